"""The WebSocket transport, ``GET /v1/realtime``: frames in, events out, one writer per socket.

Two kinds of socket: a new session (``?model=`` or ``?intent=transcription``), which lives as
long as the socket; and a sideband (``?call_id=rtc_…``), which attaches to the session of a
live phone call: it gets ``session.created`` with the call's current config, then every event
of the call (through the call's ``EventFanout``), and its frames drive that session. Several
sidebands may watch one call; one leaving does not end the call; the call ending closes them
(1000) after their last events. A call not yet accepted, over, or unknown is a 404 before the
upgrade, as OpenAI requires the accept first.

Limits: a new session takes a slot of the server's :class:`SessionLimit` before the upgrade (over
``PALAVER_MAX_SESSIONS``: HTTP 429 ``session_limit_reached``, type ``rate_limit_error``) and gives it
back when it ends; a sideband takes none. A session with no client frame, no event sent and no
live response for ``PALAVER_WS_IDLE_SECONDS`` gets an ``error`` (``session_idle_timeout``) and is
closed 1001 (sidebands are exempt: the call has its own RTP timeout). A frame larger than
``PALAVER_WS_MAX_FRAME_BYTES`` gets an ``error`` (``frame_too_large``) and the socket lives on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from palaver.backends.registry import Backends
from palaver.calls.call import Call
from palaver.calls.switchboard import Switchboard
from palaver.config import DEFAULT_MODEL, Settings
from palaver.limits import IdleClock, SessionLimit
from palaver.protocol.errors import ProtocolError
from palaver.protocol.server_events import ServerEvent, SessionCreatedEvent
from palaver.protocol.session_config import new_realtime_session, new_transcription_session
from palaver.server.auth import key_accepted, presented_key
from palaver.server.sessions import build_session
from palaver.session.session import Session, SessionConfig
from palaver.transports.wire_log import WireLog

log = logging.getLogger(__name__)

#: Close codes: 1000 normal (the call a sideband watched ended), 1001 going away (session expired
#: or idle), 1008 policy (slow client), 4000 beta client (as OpenAI).
CLOSE_NORMAL = 1000
CLOSE_EXPIRED = 1001
CLOSE_IDLE = 1001
CLOSE_TOO_SLOW = 1008
CLOSE_BETA = 4000


@dataclass
class RealtimeContext:
    settings: Settings
    backends: Backends
    wire_log: WireLog | None
    #: Phone calls (sidebands attach to them); None where calls are not served.
    switchboard: Switchboard | None = None
    #: The server-wide session counter (shared with SIP calls); None: no limit.
    sessions: SessionLimit | None = None


def _error_body(message: str, code: str, *, type: str = "invalid_request_error") -> dict[str, object]:
    return {"error": {"message": message, "type": type, "code": code, "param": None}}


async def _deny(
    websocket: WebSocket, status: int, message: str, code: str, *, type: str = "invalid_request_error"
) -> None:
    """Refuse before the upgrade, with an HTTP status and OpenAI's JSON error body."""
    try:
        body = _error_body(message, code, type=type)
        await websocket.send_denial_response(JSONResponse(body, status_code=status))
    except RuntimeError:  # the ASGI server cannot send a denial body: a plain 403
        await websocket.close(code=1008, reason=message[:120])


class _Finish:
    """Queued after a socket's last event: close it normally once everything before is written."""


_FINISH = _Finish()


class _Outbox:
    """The one writer of a socket: events are serialised when made and sent in order.

    ``emit`` takes an event (a session's own socket); ``put`` takes one already serialised (a
    call's fanout serialises once for all its sidebands). More than ``bound`` events waiting
    means the client cannot keep up: it is disconnected (1008) rather than buffered without end.
    """

    def __init__(
        self,
        websocket: WebSocket,
        bound: int,
        wire_log: WireLog | None,
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        self._ws = websocket
        self._on_sent = on_sent  # after each event written (the idle clock)
        self._queue: asyncio.Queue[str | _Finish | None] = asyncio.Queue()  # bounded by put()
        self._bound = bound
        self._wire_log = wire_log
        self.overflowed = False

    def emit(self, event: ServerEvent) -> None:
        if not self.overflowed:
            self.put(event.to_json())

    def put(self, text: str) -> None:
        if self.overflowed:
            return
        if self._queue.qsize() >= self._bound:
            self.overflowed = True
            return
        self._queue.put_nowait(text)

    def finish(self) -> None:
        """No more events: close the socket with 1000 after what is queued."""
        self._queue.put_nowait(_FINISH)

    def close(self) -> None:
        """Stop writing (the socket is gone or being torn down)."""
        self._queue.put_nowait(None)

    async def run(self) -> None:
        while not self.overflowed:
            item = await self._queue.get()
            try:
                if item is None:
                    return
                if isinstance(item, _Finish):
                    await self._ws.close(code=CLOSE_NORMAL)
                    return
                await self._ws.send_text(item)
                if self._on_sent is not None:
                    self._on_sent()
                if self._wire_log is not None:
                    self._wire_log.write(item)
            finally:
                self._queue.task_done()
        await self._ws.close(code=CLOSE_TOO_SLOW, reason="client too slow to read events")

    async def drain(self, timeout: float) -> None:
        """Wait until everything queued so far is written."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._queue.join()


async def realtime_endpoint(websocket: WebSocket, ctx: RealtimeContext) -> None:
    settings = ctx.settings
    params = websocket.query_params
    subprotocols = [
        p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()
    ]
    if not key_accepted(settings.api_key, presented_key(websocket.headers, subprotocols)):
        await _deny(websocket, 401, "Incorrect API key provided.", "invalid_api_key")
        return
    call_id = params.get("call_id")
    if call_id:
        call = ctx.switchboard.get(call_id) if ctx.switchboard is not None else None
        if call is None or not call.live or call.session is None:
            await _deny(websocket, 404, f"Call '{call_id}' not found.", "call_not_found")
            return
        if await _accept_upgrade(websocket, subprotocols):
            await _sideband(websocket, ctx, call, call.session)
        return
    if params.get("intent") not in (None, "transcription"):
        await _deny(websocket, 400, f"Invalid value: '{params['intent']}' for intent.", "invalid_value")
        return

    expires_at = int(time.time() + settings.session_max_seconds)
    config: SessionConfig
    if params.get("intent") == "transcription":
        config = new_transcription_session(expires_at=expires_at)
    else:
        config = new_realtime_session(params.get("model") or DEFAULT_MODEL, expires_at=expires_at)

    slot = ctx.sessions.acquire("websocket") if ctx.sessions is not None else None
    if ctx.sessions is not None and slot is None:
        limit = ctx.sessions.maximum
        log.warning("session limit reached (%d at once): a new WebSocket session is refused (429)", limit)
        message = f"Too many sessions: this server takes at most {limit} at once. Please try again later."
        await _deny(websocket, 429, message, "session_limit_reached", type="rate_limit_error")
        return
    try:
        await _session_socket(websocket, ctx, config, subprotocols)
    finally:
        if slot is not None:
            slot.release()


async def _session_socket(
    websocket: WebSocket, ctx: RealtimeContext, config: SessionConfig, subprotocols: list[str]
) -> None:
    """Run a new session on its socket until the client leaves, it expires, or it is idle."""
    settings = ctx.settings
    if not await _accept_upgrade(websocket, subprotocols):
        return
    loop = asyncio.get_running_loop()
    idle = IdleClock(settings.ws_idle_seconds, loop.time())

    def active() -> None:
        idle.touch(loop.time())

    outbox = _Outbox(websocket, settings.send_queue_events, ctx.wire_log, on_sent=active)
    session = build_session(settings, ctx.backends, config, outbox.emit)
    writer = asyncio.create_task(outbox.run(), name="ws-writer")
    reader = asyncio.create_task(
        _read_loop(websocket, session, writer, outbox.emit, settings.ws_max_frame_bytes, on_frame=active),
        name="ws-reader",
    )
    watched: set[asyncio.Task[None]] = {reader, writer}
    watch: asyncio.Task[None] | None = None
    if idle.enabled:
        watch = asyncio.create_task(_idle_watch(idle, session), name="ws-idle")
        watched.add(watch)
    session.start()
    ending: tuple[str, str] | None = None  # (code, message) of the error event before a close 1001
    try:
        try:
            async with asyncio.timeout(settings.session_max_seconds):
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            minutes = settings.session_max_seconds / 60
            limit = f"{minutes:g} minutes" if minutes >= 1 else f"{settings.session_max_seconds:g} seconds"
            ending = ("session_expired", f"Your session hit the maximum duration of {limit}.")
        else:
            if watch is not None and watch.done() and not reader.done() and not writer.done():
                seconds = f"{settings.ws_idle_seconds:g}"
                ending = (
                    "session_idle_timeout",
                    f"The session was idle for {seconds} seconds and was closed.",
                )
        if ending is not None:
            code, message = ending
            outbox.emit(ProtocolError(message, code=code).to_event())
            await outbox.drain(timeout=2.0)
            if websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await websocket.close(
                        code=CLOSE_EXPIRED if code == "session_expired" else CLOSE_IDLE, reason=message
                    )
    finally:
        if reader.done() and not reader.cancelled():
            failure = reader.exception()
            if failure is not None and not isinstance(failure, WebSocketDisconnect):
                log.error("WebSocket session failed", exc_info=failure)
        for task in (reader, watch):
            if task is not None:
                task.cancel()
        await session.close()
        outbox.close()
        writer.cancel()
        for task in (reader, watch, writer):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                    await task


async def _idle_watch(idle: IdleClock, session: Session) -> None:
    """Return once the session is idle: nothing from the client, nothing sent, no live response."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(max(idle.remaining(loop.time()), 0.05))
        now = loop.time()
        if session.active_response_id is not None:  # a response in progress (even a silent one) is activity
            idle.touch(now)
        elif idle.expired(now):
            return


async def _accept_upgrade(websocket: WebSocket, subprotocols: list[str]) -> bool:
    """Complete the upgrade; False (socket closed) for a beta client."""
    await websocket.accept(subprotocol="realtime" if "realtime" in subprotocols else None)
    if "openai-beta.realtime-v1" in subprotocols or websocket.headers.get("openai-beta"):
        # As OpenAI does since the beta shutdown: an error event, then close 4000.
        message = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
        await websocket.send_text(ProtocolError(message, code="beta_api_shape_disabled").to_event().to_json())
        await websocket.close(code=CLOSE_BETA, reason="beta_api_shape_disabled")
        return False
    return True


async def _sideband(websocket: WebSocket, ctx: RealtimeContext, call: Call, session: Session) -> None:
    """Attach to a live call until the client leaves or the call ends; the call goes on either way."""
    outbox = _Outbox(websocket, ctx.settings.send_queue_events, None)  # the fanout wire-logs its events

    def reply(event: ServerEvent) -> None:  # to this sideband only (a frame it sent was refused)
        text = event.to_json()
        if ctx.wire_log is not None:
            ctx.wire_log.write(text)
        outbox.put(text)

    created = SessionCreatedEvent(session=session.config).to_json()
    if ctx.wire_log is not None:
        ctx.wire_log.write(created)
    outbox.put(created)
    if not call.fanout.attach(outbox):  # the call ended meanwhile
        outbox.finish()
    log.info("sideband attached to call %s (%d attached)", call.id, call.fanout.listeners)
    writer = asyncio.create_task(outbox.run(), name=f"ws-sideband-writer-{call.id}")
    reader = asyncio.create_task(
        _read_loop(websocket, session, writer, reply, ctx.settings.ws_max_frame_bytes),
        name=f"ws-sideband-reader-{call.id}",
    )
    try:
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        call.fanout.detach(outbox)
        # The writer done (call ended: closed 1000; or too slow: 1008) means nothing more to read.
        reader.cancel()
        outbox.close()
        if not writer.done():
            writer.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
        log.info("sideband left call %s (%d attached)", call.id, call.fanout.listeners)


async def _read_loop(
    websocket: WebSocket,
    session: Session,
    writer: asyncio.Task[None],
    reply: Callable[[ServerEvent], None],
    max_frame_bytes: int,
    *,
    on_frame: Callable[[], None] | None = None,
) -> None:
    """Feed the client's frames to the session; a frame over ``max_frame_bytes`` gets an ``error``
    through ``reply`` instead (the ASGI server's own cap, above it, closes the socket 1009)."""
    while not writer.done():
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if on_frame is not None:
            on_frame()
        frame = message.get("text")
        if frame is None:
            frame = message.get("bytes")
        if frame is None:
            continue
        if _too_large(frame, max_frame_bytes):
            text = f"The frame is too large: at most {max_frame_bytes} bytes are accepted in one frame."
            reply(ProtocolError(text, code="frame_too_large").to_event())
            continue
        await session.handle_frame(frame)


def _too_large(frame: str | bytes, limit: int) -> bool:
    """Whether ``frame`` is over ``limit`` bytes (a text frame counts its UTF-8 bytes)."""
    size = len(frame)
    if isinstance(frame, bytes) or size > limit or size * 4 <= limit:
        return size > limit
    return len(frame.encode("utf-8", "surrogatepass")) > limit
