"""The WebSocket transport, ``GET /v1/realtime``: frames in, events out, one writer per socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from palaver.backends.registry import Backends
from palaver.config import DEFAULT_MODEL, Settings
from palaver.engine.cascade import CascadeEngine
from palaver.protocol.errors import ProtocolError
from palaver.protocol.server_events import ServerEvent
from palaver.protocol.session_config import new_realtime_session, new_transcription_session
from palaver.server.auth import key_accepted, presented_key
from palaver.session.session import Session, SessionConfig
from palaver.transports.wire_log import WireLog
from palaver.turn.detector import BargeInGuard

log = logging.getLogger(__name__)

#: Close codes: 1001 going away (session expired), 1008 policy (slow client), 4000 beta client (as OpenAI).
CLOSE_EXPIRED = 1001
CLOSE_TOO_SLOW = 1008
CLOSE_BETA = 4000


@dataclass
class RealtimeContext:
    settings: Settings
    backends: Backends
    wire_log: WireLog | None


def _error_body(message: str, code: str, *, type: str = "invalid_request_error") -> dict[str, object]:
    return {"error": {"message": message, "type": type, "code": code, "param": None}}


async def _deny(websocket: WebSocket, status: int, message: str, code: str) -> None:
    """Refuse before the upgrade, with an HTTP status and OpenAI's JSON error body."""
    try:
        await websocket.send_denial_response(JSONResponse(_error_body(message, code), status_code=status))
    except RuntimeError:  # the ASGI server cannot send a denial body: a plain 403
        await websocket.close(code=1008, reason=message[:120])


class _Outbox:
    """The one writer of a socket: events are serialised when made and sent in order."""

    def __init__(self, websocket: WebSocket, bound: int, wire_log: WireLog | None) -> None:
        self._ws = websocket
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=bound)
        self._wire_log = wire_log
        self.overflowed = False

    def emit(self, event: ServerEvent) -> None:
        if self.overflowed:
            return
        text = event.to_json()
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True

    def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    async def run(self) -> None:
        while not self.overflowed:
            text = await self._queue.get()
            if text is None:
                return
            await self._ws.send_text(text)
            if self._wire_log is not None:
                self._wire_log.write(text)
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
    if params.get("call_id"):
        await _deny(websocket, 404, f"Call '{params['call_id']}' not found.", "call_not_found")
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

    await websocket.accept(subprotocol="realtime" if "realtime" in subprotocols else None)
    if "openai-beta.realtime-v1" in subprotocols or websocket.headers.get("openai-beta"):
        # As OpenAI does since the beta shutdown: an error event, then close 4000.
        message = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
        await websocket.send_text(ProtocolError(message, code="beta_api_shape_disabled").to_event().to_json())
        await websocket.close(code=CLOSE_BETA, reason="beta_api_shape_disabled")
        return
    outbox = _Outbox(websocket, settings.send_queue_events, ctx.wire_log)
    backends = ctx.backends
    engine = CascadeEngine(chat=backends.chat, tts=backends.tts, executor=backends.executor)
    session = Session(
        config=config,
        engine=engine,
        stt=backends.stt,
        vad=backends.vad,
        barge_in=BargeInGuard(
            min_speech_ms=settings.barge_in_min_speech_ms, threshold_boost=settings.barge_in_threshold_boost
        ),
        executor=backends.executor,
        stt_slots=backends.stt_slots,
        accepts_images=backends.chat.accepts_images,
        policy=backends.policy,
        mcp_timeout=settings.mcp_call_seconds,
        mcp_connect_timeout=settings.mcp_connect_seconds,
        approval_timeout=settings.mcp_approval_seconds,
        emit=outbox.emit,
    )
    writer = asyncio.create_task(outbox.run(), name="ws-writer")
    session.start()
    try:
        async with asyncio.timeout(settings.session_max_seconds):
            await _read_loop(websocket, session, writer)
    except TimeoutError:
        minutes = settings.session_max_seconds / 60
        limit = f"{minutes:g} minutes" if minutes >= 1 else f"{settings.session_max_seconds:g} seconds"
        message = f"Your session hit the maximum duration of {limit}."
        outbox.emit(ProtocolError(message, code="session_expired").to_event())
        await outbox.drain(timeout=2.0)
        if websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(code=CLOSE_EXPIRED, reason=message)
    except WebSocketDisconnect:
        pass
    finally:
        await session.close()
        outbox.close()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


async def _read_loop(websocket: WebSocket, session: Session, writer: asyncio.Task[None]) -> None:
    while not writer.done():
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        frame = message.get("text")
        if frame is None:
            frame = message.get("bytes")
        if frame is not None:
            await session.handle_frame(frame)
