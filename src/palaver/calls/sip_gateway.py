"""Phone calls over SIP: the UA core and its transports on one side, calls and sessions on the other.

An INVITE the UA admits becomes a :class:`SipCall`: its SDP offer is answered (PCMU/PCMA,
telephone-event, SDES-SRTP when offered) with an RTP endpoint opened for it, the caller hears
ringing, and the switchboard decides (webhook + REST, or the static agent). Accepting creates a
session with server-side playout: RTP audio is fed to it, its audio is paced out at 20 ms, key
presses become ``input_audio_buffer.dtmf_event_received``, and barge-in clears what the caller
has not heard yet. BYE, CANCEL, RTP inactivity, the session's time limit or a REST hangup end it.

Everything here runs on the event loop; UA commands are followed by ``transport.flush()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from palaver.backends.registry import Backends
from palaver.calls.call import Call, CallStateError, SipHeader
from palaver.calls.line_media import LineMedia, line_format
from palaver.calls.switchboard import Switchboard
from palaver.config import Settings
from palaver.errors import CallError
from palaver.limits import SessionLimit, SessionSlot
from palaver.protocol.client_events import parse_client_event
from palaver.protocol.session_config import RealtimeSessionConfig, apply_session_update
from palaver.redact import pii
from palaver.sdp import Chosen, NoAcceptableMedia, SdpError, SessionDescription, answer
from palaver.server.sessions import build_session
from palaver.session.session import Session
from palaver.sip import Peer, SipURI, TelURI, TransportName
from palaver.sip import ua_events as ev
from palaver.sip.ua import UserAgent
from palaver.sip.ua_events import UaConfig, UaStateError
from palaver.transports.rtp import RtpEndpoint
from palaver.transports.sip import SipTransport
from palaver.transports.sip_settings import (
    parse_sip_allow,
    parse_sip_credentials,
    rtp_port_range,
    sip_transport_config,
    trunk_credentials,
)

log = logging.getLogger(__name__)

#: SIP headers of the INVITE reported in the webhook (OpenAI sends From, To, Call-ID and more).
WEBHOOK_HEADERS = ("From", "To", "Call-ID", "Contact", "User-Agent", "Diversion", "P-Asserted-Identity")
#: Status for an INVITE whose SDP cannot be answered (RFC 3261 §21.4.26) or is malformed.
NOT_ACCEPTABLE_HERE = 488
BAD_SDP = 400
#: Status for a call Palaver cannot take now (no RTP port free, shutting down).
SERVICE_UNAVAILABLE = 503
#: Status for a new call over ``PALAVER_MAX_SESSIONS`` (sent before any webhook).
BUSY_HERE = 486
#: Seconds the BYEs of a shutdown get before the transport closes.
SHUTDOWN_GRACE = 0.5


def _dialled(uri: object) -> str:
    if isinstance(uri, SipURI):
        return uri.user or ""
    if isinstance(uri, TelURI):
        return uri.number
    return ""


def _dtmf_relay_digit(content_type: str | None, body: bytes) -> str | None:
    """The key of a SIP INFO ``application/dtmf-relay`` (``Signal=5``) or ``application/dtmf``."""
    kind = (content_type or "").split(";")[0].strip().lower()
    text = body.decode("utf-8", "replace").strip()
    if kind == "application/dtmf":
        return text[:1] if text[:1] in "0123456789*#ABCD" and text else None
    if kind != "application/dtmf-relay":
        return None
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip().lower() == "signal":
            digit = value.strip().upper()
            if len(digit) == 1 and digit in "0123456789*#ABCD":
                return digit
    return None


class SipUnavailable(CallError, RuntimeError):
    """The SIP ports could not be opened (startup fails with this message)."""


class SipGateway:
    """The SIP side of the server: ``await start()``, ``await close()``."""

    def __init__(
        self,
        settings: Settings,
        backends: Backends,
        switchboard: Switchboard,
        *,
        sessions: SessionLimit | None = None,
    ) -> None:
        self.settings = settings
        #: The server-wide session counter: each call holds a slot from its INVITE to its end.
        self.sessions = sessions
        self.backends = backends
        self.switchboard = switchboard
        self.transport = SipTransport(sip_transport_config(settings))
        self.ua: UserAgent | None = None
        self._calls: dict[str, SipCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rtp_range = rtp_port_range(settings)

    @property
    def contacts(self) -> dict[TransportName, tuple[str, int]]:
        return self.transport.contacts

    async def start(self) -> None:
        try:
            contacts = await self.transport.start()
        except OSError as exc:
            settings = self.settings
            message = (
                f"cannot take SIP calls on {settings.sip_host}:{settings.sip_port}: {exc}. "
                "Is another SIP server running? Set PALAVER_SIP_PORT to a free port, "
                "or PALAVER_SIP_ENABLED=false to run without phone calls."
            )
            log.error(message)
            raise SipUnavailable(message) from None
        self.ua = UserAgent(
            UaConfig(
                contacts=contacts,
                user_agent="Palaver",
                allow_from=parse_sip_allow(self.settings.sip_allow),
                inbound_credentials=parse_sip_credentials(self.settings.sip_credentials),
                trunk_credentials=trunk_credentials(self.settings),
            )
        )
        self.transport.attach(self.ua, self._on_events)

    async def close(self) -> None:
        """Hang up every call (BYE), give the BYEs a moment, then stop listening."""
        calls = list(self._calls.values())
        for call in calls:
            with contextlib.suppress(Exception):
                await call.shutdown()
        if calls:  # the BYEs are on the wire; a moment for their answers (and retransmissions)
            await asyncio.sleep(SHUTDOWN_GRACE)
        for task in list(self._tasks):
            task.cancel()
        for call in list(self._calls.values()):
            await call.release()
        await self.transport.close()

    # ------------------------------------------------------------------ UA plumbing

    def command(self, action: Callable[[UserAgent, float], None]) -> None:
        """Run a UA command now and send what it produced."""
        assert self.ua is not None
        action(self.ua, asyncio.get_running_loop().time())
        self.transport.flush()

    def spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SIP call task %s failed", task.get_name(), exc_info=task.exception())

    def forget(self, handle: str) -> None:
        self._calls.pop(handle, None)

    def _on_events(self) -> None:
        assert self.ua is not None
        while (event := self.ua.next_event()) is not None:
            try:
                self._dispatch(event)
            except Exception:  # one call's trouble must not stop the others' events
                # The event's name and call, not its SIP text (From, To, Contact are personal data).
                log.exception("SIP event %s of call %s failed", type(event).__name__, event.call)

    def _dispatch(self, event: ev.UaEvent) -> None:
        if isinstance(event, ev.IncomingCall):
            call = SipCall(self, event.call, event.request, event.peer)
            self._calls[event.call] = call
            self.spawn(call.answer_flow(), f"sip-call-{event.call}")
            return
        found = self._calls.get(event.call)
        if found is None:
            return
        call = found
        if isinstance(event, ev.CallConfirmed):
            log.debug("call %s confirmed (ACK)", call.id)
        elif isinstance(event, ev.CallCancelled):
            call.line_ended("cancelled by the caller")
        elif isinstance(event, ev.CallEnded):
            call.line_ended(event.reason)
        elif isinstance(event, ev.ReferStatus):
            call.refer_status(event.status, event.final)
        elif isinstance(event, ev.ReInvite):
            call.reinvite(event.offer)
        elif isinstance(event, ev.InfoReceived):
            digit = _dtmf_relay_digit(event.content_type, event.body)
            if digit is not None:
                call.dtmf(digit)


class SipCall:
    """One SIP call: its media, its session, and the call control the switchboard drives."""

    def __init__(self, gateway: SipGateway, handle: str, request: Any, peer: Peer) -> None:
        self.gateway = gateway
        self.handle = handle
        self.request = request
        self.peer = peer
        self.call: Call | None = None
        self.endpoint: RtpEndpoint | None = None
        self.session: Session | None = None
        self.media: LineMedia | None = None
        self._answer: bytes = b""
        self._chosen: Chosen | None = None
        self._answered = False
        self._over = False
        self._expiry: asyncio.TimerHandle | None = None
        self._session_id = secrets.randbelow(2**31)
        self._sdp_version = self._session_id
        self._slot: SessionSlot | None = None

    @property
    def id(self) -> str:
        return self.call.id if self.call is not None else self.handle

    def _headers(self) -> list[SipHeader]:
        headers: list[SipHeader] = []
        for name in WEBHOOK_HEADERS:
            for value in self.request.headers.get_all(name):
                headers.append({"name": name, "value": value})
        return headers

    # ------------------------------------------------------------------ the incoming flow

    async def answer_flow(self) -> None:
        gw = self.gateway
        if gw.sessions is not None:
            self._slot = gw.sessions.acquire("sip")
            if self._slot is None:
                log.warning(
                    "call %s: session limit reached (%d at once); busy (486)",
                    self.handle,
                    gw.sessions.maximum,
                )
                self._reject_now(BUSY_HERE)
                return
        try:
            offer = SessionDescription.parse(self.request.body)
        except SdpError as exc:
            log.info("call %s: unusable SDP offer: %s", self.handle, exc)
            self._reject_now(BAD_SDP if self.request.body else NOT_ACCEPTABLE_HERE)
            return
        host = gw.transport.contacts.get(self.peer.transport, ("127.0.0.1", 0))[0]
        try:
            self.endpoint = await RtpEndpoint.open(gw.settings.sip_host, self._port_range())
        except OSError as exc:  # every RTP port of the range in use
            log.error("call %s: no RTP port free (%s); declining with 503", self.handle, exc)
            self._reject_now(SERVICE_UNAVAILABLE)
            return
        if self._over:  # cancelled while the port was opened
            await self.release()
            return
        try:
            sdp, chosen = answer(  # with our own SRTP key when the offer is RTP/SAVP
                offer, local_ip=host, local_port=self.endpoint.local_port, session_id=self._session_id
            )
        except NoAcceptableMedia as exc:
            log.info("call %s: %s", self.handle, exc)
            self._reject_now(NOT_ACCEPTABLE_HERE)
            await self.release()
            return
        self._answer = str(sdp).encode()
        self._chosen = chosen
        self.call = gw.switchboard.new_call(
            control=self, sip_headers=self._headers(), dialled=_dialled(self.request.uri)
        )
        with contextlib.suppress(CallStateError):
            self._command(lambda ua, now: ua.ringing(self.handle, now))
        await gw.switchboard.offer(self.call)

    def _port_range(self) -> tuple[int, int]:
        lo, hi = self.gateway._rtp_range
        return (lo, hi) if (lo, hi) != (0, 0) else (1024, 65535)

    def _reject_now(self, status: int, *, quiet: bool = True) -> None:
        """Answer the INVITE with ``status``; ``quiet=False`` raises ``CallStateError`` when the
        line was already over (the cleanup is then the UA's report's, already scheduled)."""
        self._over = True
        try:
            self._command(lambda ua, now: ua.reject(self.handle, status, now))
        except CallStateError:
            if not quiet:
                raise
        finally:
            self.gateway.forget(self.handle)
            self._release_slot()

    def _command(self, action: Callable[[UserAgent, float], None]) -> None:
        """Run a UA command for this call: the UA's refusal (``sip.UaStateError``) becomes the
        calls layer's ``CallStateError`` here, at the boundary. When the UA no longer knows the
        call (a BYE or CANCEL it took before its report reached us) the call is cleaned up."""
        try:
            self.gateway.command(action)
        except UaStateError as exc:
            ua = self.gateway.ua
            if ua is None or self.handle not in ua.calls():
                self.line_ended("the line ended")
                raise CallStateError("The caller has hung up.", "call_ended") from exc
            log.info("call %s: the UA refused a command: %s", self.id, exc)
            raise CallStateError("The call cannot take that command in its state now.", "call_busy") from exc

    def _release_slot(self) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()

    # ------------------------------------------------------------------ CallControl

    async def accept(self, config: RealtimeSessionConfig) -> None:
        if self._over or self.call is None or self._chosen is None or self.endpoint is None:
            raise CallStateError("The caller has hung up.", "call_ended")
        gw = self.gateway
        chosen = self._chosen
        fmt = line_format(chosen.encoding)
        line_audio = {"input": {"format": {"type": fmt}}, "output": {"format": {"type": fmt}}}
        config = apply_session_update(
            config, {"type": "realtime", "audio": line_audio}, event_id=None, audio_output_started=False
        )
        call = self.call
        endpoint = self.endpoint

        media = LineMedia(
            fmt,
            endpoint,
            call.fanout.emit,
            # read per frame: a sideband's session.update may change the formats mid-call
            session_input_format=lambda: session.input_format(),
            session_output_format=lambda: session.output_format(),
        )
        session = build_session(
            gw.settings, gw.backends, config, media.emit, server_playout=True, on_playout_clear=media.clear
        )
        try:
            self._command(lambda ua, now: ua.accept(self.handle, self._answer, now))
        except CallStateError:
            await session.close()
            raise
        self.media, self.session = media, session
        call.session = session
        endpoint.on_started = media.started
        endpoint.on_stopped = media.stopped
        self._start_media(endpoint, chosen)
        self._answered = True
        session.start()
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(gw.settings.session_max_seconds, self._expired)
        log.info("call %s answered: %s/%s", call.id, chosen.encoding, "SRTP" if chosen.srtp else "RTP")

    async def reject(self, status_code: int) -> None:
        if self._over:
            raise CallStateError("The caller has hung up.", "call_ended")
        self._reject_now(status_code, quiet=False)
        await self.release()

    async def refer(self, target_uri: str) -> None:
        if self._over:
            raise CallStateError("The call is over.", "call_ended")
        try:
            self._command(lambda ua, now: ua.refer(self.handle, target_uri, now))
        except ValueError as exc:
            raise CallStateError(f"Invalid target_uri: {exc}", "invalid_value") from exc
        self._note(f"Transferring the caller to {target_uri}.")

    async def hangup(self) -> None:
        """REST's hangup: ``CallStateError`` (409 call_ended) once the line is over."""
        if self._over:
            raise CallStateError("The call is over.", "call_ended")
        self._command(lambda ua, now: ua.bye(self.handle, now))
        await self.ended("hung up by the server")

    async def _hang_up(self) -> None:
        """Palaver's own hangup (RTP silence, time limit, transfer done, shutdown): a no-op once over."""
        with contextlib.suppress(CallStateError):
            await self.hangup()

    async def send_dtmf(self, digits: str, duration_ms: int) -> None:
        endpoint = self.endpoint
        if self._over or endpoint is None or not self._answered:
            raise CallStateError("The call is over.", "call_ended")
        if self._chosen is None or self._chosen.telephone_event is None:
            raise CallStateError(
                "The caller's phone did not offer telephone-event (RFC 4733): no DTMF can be sent.",
                "dtmf_not_supported",
            )
        for digit in digits:
            endpoint.send_dtmf(digit, duration_ms)

    # ------------------------------------------------------------------ from the UA and the media

    def _line_audio(self, payload: bytes) -> None:
        if self.session is not None and self.media is not None:
            self.session.feed_audio(self.media.from_line(payload))

    def dtmf(self, digit: str) -> None:
        log.info("call %s: DTMF %s received", self.id, pii(digit))
        if self.session is not None:
            self.session.dtmf(digit)

    def refer_status(self, status: int, final: bool) -> None:
        """REFER progress (its response, then NOTIFY sipfrags) as a system note in the conversation:
        sideband observers see it, and so does the brain (it can tell the caller a transfer failed)."""
        outcome = "in progress" if not final else ("succeeded" if 200 <= status < 300 else "failed")
        self._note(f"Call transfer {outcome} (SIP {status}).")
        if final and 200 <= status < 300:
            self.gateway.spawn(self._hang_up(), f"sip-transferred-{self.handle}")

    def _note(self, text: str) -> None:
        if self.session is None:
            return
        item = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]}
        event = parse_client_event(json.dumps({"type": "conversation.item.create", "item": item}))
        with contextlib.suppress(Exception):
            self.session.handle_event(event)

    def reinvite(self, offer: bytes | None) -> None:
        """A re-INVITE or UPDATE (hold, resume, new address): answer on the same RTP port."""
        endpoint = self.endpoint
        if offer is None or endpoint is None or self._chosen is None:
            answer_sdp = self._answer
            with contextlib.suppress(CallStateError):
                self._command(lambda ua, now: ua.accept_reinvite(self.handle, answer_sdp, now))
            return
        try:
            parsed = SessionDescription.parse(offer)
            self._sdp_version += 1
            host = self.gateway.transport.contacts.get(self.peer.transport, ("127.0.0.1", 0))[0]
            srtp = self._chosen.srtp
            sdp, chosen = answer(
                parsed,
                local_ip=host,
                local_port=endpoint.local_port,
                session_id=self._session_id,
                session_version=self._sdp_version,
                srtp_key=srtp.outbound_key if srtp is not None else None,
            )
        except SdpError as exc:
            log.info("call %s: unusable re-INVITE offer: %s", self.id, exc)
            status = NOT_ACCEPTABLE_HERE
            with contextlib.suppress(CallStateError):
                self._command(lambda ua, now: ua.reject_reinvite(self.handle, status, now))
            return
        self._answer, self._chosen = str(sdp).encode(), chosen
        answer_sdp = self._answer
        with contextlib.suppress(CallStateError):
            self._command(lambda ua, now: ua.accept_reinvite(self.handle, answer_sdp, now))
        if self._answered:
            self._start_media(endpoint, chosen)

    def _start_media(self, endpoint: RtpEndpoint, chosen: Chosen) -> None:
        """Start the RTP stream the SDP settled, or update it after a re-INVITE (same port,
        one continuous outgoing stream)."""
        endpoint.start(
            (chosen.remote_address, chosen.remote_port),
            chosen.payload_type,
            "PCMA" if chosen.encoding == "PCMA" else "PCMU",
            telephone_event=chosen.telephone_event,
            srtp=chosen.srtp,
            on_audio=self._line_audio,
            on_dtmf=self.dtmf,
            on_inactive=self._inactive,
            inactivity_seconds=self.gateway.settings.rtp_timeout_seconds or None,
            direction=chosen.direction,
            remote_rtcp=(chosen.remote_address, chosen.remote_rtcp_port),
        )

    def _inactive(self) -> None:
        log.info("call %s: no RTP for %gs, hanging up", self.id, self.gateway.settings.rtp_timeout_seconds)
        self.gateway.spawn(self._hang_up(), f"sip-inactive-{self.handle}")

    def _expired(self) -> None:
        log.info("call %s reached the session limit, hanging up", self.id)
        self.gateway.spawn(self._hang_up(), f"sip-expired-{self.handle}")

    # ------------------------------------------------------------------ the end

    def line_ended(self, reason: str) -> None:
        """The UA's word that the line is over (BYE, CANCEL, failure): commands are refused from
        now on (409 call_ended), and the cleanup runs in a task."""
        self._over = True
        self.gateway.spawn(self.ended(reason), f"sip-end-{self.handle}")

    async def ended(self, reason: str) -> None:
        """The call is over (BYE either way, CANCEL, failure): stop its session and media."""
        if self._over and self.session is None and self.endpoint is None:
            return
        self._over = True
        log.info("call %s ended: %s", self.id, reason)
        await self.release()

    async def shutdown(self) -> None:
        """Server shutdown: hang up answered calls, decline ringing ones."""
        if self._answered:
            await self._hang_up()
        elif not self._over:
            self._reject_now(SERVICE_UNAVAILABLE)
            await self.release()

    async def release(self) -> None:
        self._over = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        session, self.session = self.session, None
        endpoint, self.endpoint = self.endpoint, None
        if session is not None:
            await session.close()
        if endpoint is not None:
            await endpoint.close()
        if self.call is not None:
            self.call.mark_ended()
        self.gateway.forget(self.handle)
        self._release_slot()
