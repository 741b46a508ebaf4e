"""A phone call as the Realtime API sees it: an ``rtc_…`` id, its SIP headers, and a decision.

The transport (the SIP bridge) creates a ``Call`` with its ``CallControl`` and offers it; the
decision — accept with a session config, reject with a SIP status, later refer or hang up —
comes from REST (``calls/rest.py``) or from the switchboard's default, and always goes through
the methods here, which hold the state machine:

    pending ──accept──▶ accepted ──refer──▶ referred (still live; refer again or hang up)
       │                    │                   │
       └──reject──▶ rejected└────hangup / the line ends──▶ ended

The methods are serialised per call (one lock), so the ``CallControl`` never sees two commands
for one call at once, and a second accept — from REST or the default racing it — gets a clear
``CallStateError`` (HTTP 409) instead of a second SIP answer.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypedDict

from palaver.calls.fanout import EventFanout
from palaver.errors import CallError
from palaver.protocol.ids import new_id
from palaver.protocol.session_config import RealtimeSessionConfig
from palaver.redact import pii

if TYPE_CHECKING:
    from palaver.session.session import Session

log = logging.getLogger(__name__)

#: The SIP status a reject sends when none is given (603 Decline, as OpenAI).
DEFAULT_REJECT_STATUS = 603


class SipHeader(TypedDict):
    name: str
    value: str


class CallControl(Protocol):
    """What the transport does when the call is decided; the SIP bridge implements it.

    ``accept`` answers the call (SIP 200 OK) and must set ``call.session`` (a started
    ``Session`` whose ``emit`` is, or feeds, ``call.fanout``) before it returns. Errors raised
    here reach the REST caller as a 500 (or 409 when the call ended meanwhile).
    """

    async def accept(self, config: RealtimeSessionConfig) -> None: ...

    async def reject(self, status_code: int) -> None: ...

    async def refer(self, target_uri: str) -> None: ...

    async def hangup(self) -> None: ...

    async def send_dtmf(self, digits: str, duration_ms: int) -> None: ...


class CallState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFERRED = "referred"
    REJECTED = "rejected"
    ENDED = "ended"


LIVE = frozenset({CallState.ACCEPTED, CallState.REFERRED})
OVER = frozenset({CallState.REJECTED, CallState.ENDED})


class CallStateError(CallError):
    """A command the call's state does not allow (REST answers 409 with ``code``)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Call:
    def __init__(
        self,
        *,
        control: CallControl,
        sip_headers: list[SipHeader],
        dialled: str = "",
        fanout: EventFanout | None = None,
        call_id: str | None = None,
    ) -> None:
        self.id = call_id or new_id("rtc")
        self.control = control
        self.sip_headers = sip_headers
        #: The number or user part that was called (agents are chosen by it).
        self.dialled = dialled
        self.fanout = fanout if fanout is not None else EventFanout()
        #: Set by the transport's ``accept``.
        self.session: Session | None = None
        self.state = CallState.PENDING
        self.created_at = time.time()
        #: Set once the call is over (rejected, or ended after being answered, or gone while pending).
        self.ended = asyncio.Event()
        self._decided = asyncio.Event()  # left pending (decided, or over)
        self._lock = asyncio.Lock()
        self._on_end: list[Callable[[Call], None]] = []

    def __repr__(self) -> str:
        return f"Call({self.id}, {self.state.value}, dialled={pii(self.dialled)!r})"  # reprs reach logs

    @property
    def live(self) -> bool:
        """Answered and not over: a sideband may attach."""
        return self.state in LIVE and self.session is not None

    @property
    def over(self) -> bool:
        return self.state in OVER

    async def wait_decided(self) -> CallState:
        """Wait until the call leaves ``pending`` (a decision, or the caller gave up)."""
        await self._decided.wait()
        return self.state

    def on_end(self, callback: Callable[[Call], None]) -> None:
        """Run ``callback(call)`` once when the call is over (at once if it already is)."""
        if self.over:
            callback(self)
        else:
            self._on_end.append(callback)

    # ------------------------------------------------------------------ commands

    async def accept(self, config: RealtimeSessionConfig) -> None:
        async with self._lock:
            self._require_pending("accept")
            await self.control.accept(config)
            if self.state is CallState.PENDING:
                self._move(CallState.ACCEPTED)
        log.info("call %s accepted (model %s)", self.id, config.model)

    async def reject(self, status_code: int = DEFAULT_REJECT_STATUS) -> None:
        async with self._lock:
            self._require_pending("reject")
            await self.control.reject(status_code)
            self._rejected()
        log.info("call %s rejected with %d", self.id, status_code)

    async def refer(self, target_uri: str) -> None:
        async with self._lock:
            self._require_live("refer")
            await self.control.refer(target_uri)
            if self.state in LIVE:
                self._move(CallState.REFERRED)
        log.info("call %s referred to %s", self.id, pii(target_uri))

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Press keys on the line (RFC 4733), one after another: a Palaver extension."""
        async with self._lock:
            self._require_live("send DTMF on")
            await self.control.send_dtmf(digits, duration_ms)
        log.info("call %s: sent %d DTMF digit(s) %s", self.id, len(digits), pii(digits))

    async def hangup(self) -> None:
        """Hang up an answered call; a call still pending is declined (603) instead."""
        async with self._lock:
            if self.state is CallState.PENDING:
                await self.control.reject(DEFAULT_REJECT_STATUS)
                self._rejected()
                log.info("call %s hung up while pending: rejected with %d", self.id, DEFAULT_REJECT_STATUS)
                return
            self._require_live("hang up")
            await self.control.hangup()
            self._finish(CallState.ENDED)
        log.info("call %s hung up", self.id)

    # ------------------------------------------------------------------ transport notifications

    def mark_ended(self) -> None:
        """The transport's word that the call is over (BYE, CANCEL, failure): idempotent.

        Sidebands are closed (code 1000) after the events already queued for them.
        """
        self._finish(CallState.ENDED)

    # ------------------------------------------------------------------ internals

    def _require_pending(self, verb: str) -> None:
        if self.state is CallState.PENDING:
            return
        if self.state is CallState.ENDED:
            raise CallStateError(f"Call '{self.id}' has ended; cannot {verb} it.", "call_ended")
        if self.state is CallState.REJECTED:
            raise CallStateError(
                f"Call '{self.id}' was already rejected; cannot {verb} it.", "call_already_rejected"
            )
        raise CallStateError(
            f"Call '{self.id}' was already accepted; cannot {verb} it.", "call_already_accepted"
        )

    def _require_live(self, verb: str) -> None:
        if self.state in LIVE:
            return
        if self.state is CallState.PENDING:
            raise CallStateError(
                f"Call '{self.id}' has not been accepted yet; cannot {verb} it.", "call_not_accepted"
            )
        raise CallStateError(f"Call '{self.id}' has ended; cannot {verb} it.", "call_ended")

    def _move(self, state: CallState) -> None:
        self.state = state
        self._decided.set()

    def _rejected(self) -> None:
        """The transport carried a reject out.  It may have reported the line over meanwhile (its
        cleanup calls ``mark_ended``); the call was still rejected, and says so to late commands."""
        if self.state is CallState.ENDED:
            self.state = CallState.REJECTED
        self._finish(CallState.REJECTED)

    def _finish(self, state: CallState) -> None:
        if self.over:
            return
        self._move(state)
        self.ended.set()
        self.fanout.close()
        callbacks, self._on_end = self._on_end, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("call %s: an end callback failed", self.id)
