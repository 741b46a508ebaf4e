"""SIP transactions (RFC 3261 §17, with the Accepted state of RFC 6026), sans-I/O.

A transaction takes messages and ``now`` (seconds, any monotonic origin) and
returns actions for its owner to carry out: ``Send`` bytes, ``Deliver`` a
message to the transaction user, report a ``Timeout`` or ``TransportFailed``,
and finally ``Terminated``.  ``get_timer()`` says when to call
``handle_timer(now)`` next.  Each machine is a transition table: (state,
event) -> (next state, effects).  A remote event missing from the table is
absorbed; a TU event missing from it raises TransactionError.

RFC 6026: a 2xx to an INVITE moves both INVITE machines to Accepted (Timers L
and M) instead of Terminated, so retransmitted INVITEs are absorbed and 2xx
retransmissions and ACKs reach the TU, which owns 2xx reliability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import ClassVar

from palaver.errors import SipError

from .headers import parse_cseq, parse_via
from .message import Headers, Message, Request, Response
from .status import make_response
from .timers import DEFAULT_TIMERS, Timer, TimerConfig

__all__ = [
    "Action",
    "ClientTransaction",
    "Deliver",
    "Input",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "Send",
    "ServerTransaction",
    "State",
    "Terminated",
    "Timeout",
    "Transaction",
    "TransactionError",
    "TransportFailed",
    "client_transaction",
    "make_ack",
    "server_transaction",
]


class TransactionError(SipError):
    """A local misuse: a TU move the transaction's state does not allow."""


class State(StrEnum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Input(StrEnum):
    """Non-timer events: responses and requests from the network, responses from the TU."""

    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "300-699"
    REQUEST = "request retransmission"
    ACK = "ACK"
    TU_PROVISIONAL = "TU 1xx"
    TU_SUCCESS = "TU 2xx"
    TU_FAILURE = "TU 300-699"
    TRANSPORT_ERROR = "transport error"


Event = Input | Timer


class _Do(Enum):
    PASS = "pass to TU"
    RETRANSMIT = "retransmit and back off"
    SEND = "send the TU's response"
    RESEND = "resend the last response"
    SEND_ACK = "send ACK"
    SEND_TRYING = "send 100 Trying"
    TIMEOUT = "report timeout"
    FAIL = "report transport error"


@dataclass(frozen=True, slots=True)
class Send:
    """Transmit ``data`` (the serialised ``message``) to the transaction's peer."""

    message: Message
    data: bytes


@dataclass(frozen=True, slots=True)
class Deliver:
    """Pass ``message`` up to the transaction user."""

    message: Message


@dataclass(frozen=True, slots=True)
class Timeout:
    """The transaction timed out (Timer B, F or H): tell the TU (a 408 for clients)."""

    timer: Timer


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The transport reported a failure to send: tell the TU (a 503 for clients)."""


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction is over; its owner forgets it."""


Action = Send | Deliver | Timeout | TransportFailed | Terminated
Table = Mapping[tuple[State, Event], tuple[State, tuple[_Do, ...]]]

_TU_INPUTS = frozenset({Input.TU_PROVISIONAL, Input.TU_SUCCESS, Input.TU_FAILURE})


def _classify(status: int, tu: bool) -> Input:
    if status < 200:
        return Input.TU_PROVISIONAL if tu else Input.PROVISIONAL
    if status < 300:
        return Input.TU_SUCCESS if tu else Input.SUCCESS
    return Input.TU_FAILURE if tu else Input.FAILURE


class Transaction:
    """State, timers and the table interpreter shared by the four machines."""

    TABLE: ClassVar[Table]
    TIMERS: ClassVar[Mapping[State, tuple[Timer, ...]]]
    INITIAL: ClassVar[State]
    #: An INVITE machine (takes only INVITE) or a non-INVITE one (takes neither INVITE nor ACK).
    INVITE: ClassVar[bool]

    def __init__(
        self,
        request: Request,
        *,
        reliable: bool,
        timers: TimerConfig = DEFAULT_TIMERS,
        peer: object = None,
    ) -> None:
        if (request.method == "INVITE") != self.INVITE or request.method == "ACK":
            raise TransactionError(f"{request.method} cannot start a {type(self).__name__}")
        vias = request.headers.get_all("Via")
        if not vias or "CSeq" not in request.headers:
            raise TransactionError("a transaction's request needs a Via and a CSeq")
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.peer = peer
        self.branch = parse_via(vias[0]).branch
        self.cseq = parse_cseq(request.headers.lines("CSeq")[0])
        self.state = self.INITIAL
        self.started = False
        self._deadlines: dict[Timer, float] = {}
        self._intervals: dict[Timer, float] = {}
        self._last: Send | None = None

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def get_timer(self) -> float | None:
        """When ``handle_timer`` should next be called, or None."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> list[Action]:
        """Fire every timer due at ``now``, earliest first."""
        actions: list[Action] = []
        while self._deadlines and not self.terminated:
            timer, when = min(self._deadlines.items(), key=lambda item: item[1])
            if when > now:
                break
            del self._deadlines[timer]
            actions += self._dispatch(timer, now)
        return actions

    def transport_error(self, now: float) -> list[Action]:
        """The transport could not deliver what this transaction sent."""
        return self._dispatch(Input.TRANSPORT_ERROR, now)

    def _begin(self, now: float, first: list[Action]) -> list[Action]:
        if self.started:
            raise TransactionError("transaction already started")
        self.started = True
        return first + self._enter(self.INITIAL, now)

    def _dispatch(self, event: Event, now: float, message: Message | None = None) -> list[Action]:
        if not self.started:
            raise TransactionError("transaction not started")
        entry = self.TABLE.get((self.state, event))
        if entry is None:
            if event in _TU_INPUTS:
                raise TransactionError(f"{event} not allowed in state {self.state}")
            return []  # absorbed: a late or duplicate message, or a stray timer
        next_state, effects = entry
        actions: list[Action] = []
        for effect in effects:
            actions += self._effect(effect, event, now, message)
        if next_state is not self.state:
            actions += self._enter(next_state, now)
        return actions

    def _enter(self, state: State, now: float) -> list[Action]:
        """Move to ``state``: cancel the timers it does not use, start those it does."""
        self.state = state
        if state is State.TERMINATED:
            self._deadlines.clear()
            return [Terminated()]
        keep = self.TIMERS.get(state, ())
        for timer in [t for t in self._deadlines if t not in keep]:
            del self._deadlines[timer]
        immediate: list[Timer] = []
        for timer in keep:
            if timer in self._deadlines:
                continue
            duration = self.timers.initial(timer, self.reliable)
            if duration is None:
                continue
            if duration <= 0:
                immediate.append(timer)
            else:
                self._intervals[timer] = duration
                self._deadlines[timer] = now + duration
        actions: list[Action] = []
        for timer in immediate:
            if self.state is state:
                actions += self._dispatch(timer, now)
        return actions

    def _send(self, message: Message) -> Send:
        self._last = Send(message, message.to_bytes())
        return self._last

    def _effect(self, effect: _Do, event: Event, now: float, message: Message | None) -> list[Action]:
        if effect is _Do.PASS:
            assert message is not None
            return [Deliver(message)]
        if effect is _Do.RETRANSMIT:
            assert isinstance(event, Timer) and self._last is not None
            interval = self.timers.backoff(event, self._intervals[event], self.state is State.PROCEEDING)
            self._intervals[event] = interval
            self._deadlines[event] = now + interval
            return [self._last]
        if effect is _Do.TIMEOUT:
            assert isinstance(event, Timer)
            return [Timeout(event)]
        if effect is _Do.FAIL:
            return [TransportFailed()]
        return self._server_effect(effect, message)

    def _server_effect(self, effect: _Do, message: Message | None) -> list[Action]:
        raise AssertionError(f"unexpected effect {effect}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.branch!r} {self.state}>"


class ClientTransaction(Transaction):
    """Base of the client machines: ``start`` sends the request; responses come in."""

    def start(self, now: float) -> list[Action]:
        """Send the request and start the timers."""
        return self._begin(now, [self._send(self.request)])

    def receive_response(self, response: Response, now: float) -> list[Action]:
        return self._dispatch(_classify(response.status, tu=False), now, response)


_C, _T, _P = State.CALLING, State.TRYING, State.PROCEEDING
_CO, _CF, _AC, _TE = State.COMPLETED, State.CONFIRMED, State.ACCEPTED, State.TERMINATED
_I = Input
_PASS, _RETX, _SEND, _RESEND = _Do.PASS, _Do.RETRANSMIT, _Do.SEND, _Do.RESEND


class InviteClientTransaction(ClientTransaction):
    """Figure 5 of RFC 3261 (Accepted and Timer M from RFC 6026)."""

    INITIAL = State.CALLING
    INVITE = True
    TIMERS: ClassVar[Mapping[State, tuple[Timer, ...]]] = {
        _C: (Timer.A, Timer.B),
        _CO: (Timer.D,),
        _AC: (Timer.M,),
    }
    TABLE: ClassVar[Table] = {
        (_C, Timer.A): (_C, (_RETX,)),
        (_C, Timer.B): (_TE, (_Do.TIMEOUT,)),
        (_C, _I.PROVISIONAL): (_P, (_PASS,)),
        (_P, _I.PROVISIONAL): (_P, (_PASS,)),
        (_C, _I.SUCCESS): (_AC, (_PASS,)),
        (_P, _I.SUCCESS): (_AC, (_PASS,)),
        (_AC, _I.SUCCESS): (_AC, (_PASS,)),
        (_C, _I.FAILURE): (_CO, (_PASS, _Do.SEND_ACK)),
        (_P, _I.FAILURE): (_CO, (_PASS, _Do.SEND_ACK)),
        (_CO, _I.FAILURE): (_CO, (_Do.SEND_ACK,)),
        (_C, _I.TRANSPORT_ERROR): (_TE, (_Do.FAIL,)),
        (_P, _I.TRANSPORT_ERROR): (_TE, (_Do.FAIL,)),
        (_CO, _I.TRANSPORT_ERROR): (_TE, (_Do.FAIL,)),
        (_CO, Timer.D): (_TE, ()),
        (_AC, Timer.M): (_TE, ()),
    }
    #: The ACK of the first non-2xx final, made once and resent for its retransmissions.
    _ack: Send | None = None

    def _server_effect(self, effect: _Do, message: Message | None) -> list[Action]:
        assert effect is _Do.SEND_ACK and isinstance(message, Response)
        if self._ack is None:
            ack = make_ack(self.request, message)
            self._ack = Send(ack, ack.to_bytes())
        return [self._ack]


class NonInviteClientTransaction(ClientTransaction):
    """Figure 6 of RFC 3261."""

    INITIAL = State.TRYING
    INVITE = False
    TIMERS: ClassVar[Mapping[State, tuple[Timer, ...]]] = {
        _T: (Timer.E, Timer.F),
        _P: (Timer.E, Timer.F),
        _CO: (Timer.K,),
    }
    TABLE: ClassVar[Table] = {
        (_T, Timer.E): (_T, (_RETX,)),
        (_P, Timer.E): (_P, (_RETX,)),
        (_T, Timer.F): (_TE, (_Do.TIMEOUT,)),
        (_P, Timer.F): (_TE, (_Do.TIMEOUT,)),
        (_T, _I.PROVISIONAL): (_P, (_PASS,)),
        (_P, _I.PROVISIONAL): (_P, (_PASS,)),
        (_T, _I.SUCCESS): (_CO, (_PASS,)),
        (_P, _I.SUCCESS): (_CO, (_PASS,)),
        (_T, _I.FAILURE): (_CO, (_PASS,)),
        (_P, _I.FAILURE): (_CO, (_PASS,)),
        (_T, _I.TRANSPORT_ERROR): (_TE, (_Do.FAIL,)),
        (_P, _I.TRANSPORT_ERROR): (_TE, (_Do.FAIL,)),
        (_CO, Timer.K): (_TE, ()),
    }


class ServerTransaction(Transaction):
    """Base of the server machines: ``start`` delivers the request; the TU sends responses."""

    def start(self, now: float) -> list[Action]:
        """Deliver the request to the TU and start the timers."""
        return self._begin(now, [Deliver(self.request)])

    def receive_request(self, request: Request, now: float) -> list[Action]:
        """A request matched to this transaction: a retransmission, or the ACK of a final response."""
        return self._dispatch(Input.ACK if request.method == "ACK" else Input.REQUEST, now, request)

    def send_response(self, response: Response, now: float) -> list[Action]:
        """Send the TU's response; TransactionError if the state does not allow it."""
        if not 100 <= response.status <= 699:
            raise TransactionError(f"status {response.status} is not in 100..699")
        return self._dispatch(_classify(response.status, tu=True), now, response)

    @property
    def last_response(self) -> Response | None:
        """The last response sent (what a retransmitted request gets again)."""
        last = self._last
        return last.message if last is not None and isinstance(last.message, Response) else None

    def _server_effect(self, effect: _Do, message: Message | None) -> list[Action]:
        if effect is _Do.SEND:
            assert isinstance(message, Response)
            self._deadlines.pop(Timer.TRYING, None)
            return [self._send(message)]
        if effect is _Do.SEND_TRYING:
            return [self._send(make_response(self.request, 100))]
        assert effect is _Do.RESEND
        if self._last is None:
            return []
        return [self._last]


class InviteServerTransaction(ServerTransaction):
    """Figure 7 of RFC 3261 (Accepted and Timer L from RFC 6026).

    100 (Trying) is sent by the transaction after ``TimerConfig.trying``
    unless the TU sends a response first; a retransmitted INVITE before then
    gets the 100 at once.
    """

    INITIAL = State.PROCEEDING
    INVITE = True
    TIMERS: ClassVar[Mapping[State, tuple[Timer, ...]]] = {
        _P: (Timer.TRYING,),
        _CO: (Timer.G, Timer.H),
        _CF: (Timer.I,),
        _AC: (Timer.L,),
    }
    TABLE: ClassVar[Table] = {
        (_P, Timer.TRYING): (_P, (_Do.SEND_TRYING,)),
        (_P, _I.REQUEST): (_P, (_RESEND,)),
        (_P, _I.TU_PROVISIONAL): (_P, (_SEND,)),
        (_P, _I.TU_SUCCESS): (_AC, (_SEND,)),
        (_P, _I.TU_FAILURE): (_CO, (_SEND,)),
        (_P, _I.TRANSPORT_ERROR): (_TE, (_Do.FAIL,)),
        (_CO, _I.REQUEST): (_CO, (_RESEND,)),
        (_CO, Timer.G): (_CO, (_RETX,)),
        (_CO, Timer.H): (_TE, (_Do.TIMEOUT,)),
        (_CO, _I.ACK): (_CF, ()),
        (_CO, _I.TRANSPORT_ERROR): (_TE, (_Do.FAIL,)),
        (_CF, Timer.I): (_TE, ()),
        (_AC, _I.ACK): (_AC, (_PASS,)),
        (_AC, _I.TU_SUCCESS): (_AC, (_SEND,)),
        (_AC, Timer.L): (_TE, ()),
    }

    def _server_effect(self, effect: _Do, message: Message | None) -> list[Action]:
        if effect is _Do.RESEND and self._last is None:
            effect = _Do.SEND_TRYING  # a retransmission before the 100 was due: send it now
        if effect is _Do.SEND_TRYING:
            self._deadlines.pop(Timer.TRYING, None)
        return super()._server_effect(effect, message)


class NonInviteServerTransaction(ServerTransaction):
    """Figure 8 of RFC 3261."""

    INITIAL = State.TRYING
    INVITE = False
    TIMERS: ClassVar[Mapping[State, tuple[Timer, ...]]] = {_CO: (Timer.J,)}
    TABLE: ClassVar[Table] = {
        (_T, _I.TU_PROVISIONAL): (_P, (_SEND,)),
        (_T, _I.TU_SUCCESS): (_CO, (_SEND,)),
        (_T, _I.TU_FAILURE): (_CO, (_SEND,)),
        (_P, _I.TU_PROVISIONAL): (_P, (_SEND,)),
        (_P, _I.TU_SUCCESS): (_CO, (_SEND,)),
        (_P, _I.TU_FAILURE): (_CO, (_SEND,)),
        (_P, _I.REQUEST): (_P, (_RESEND,)),
        (_P, _I.TRANSPORT_ERROR): (_TE, (_Do.FAIL,)),
        (_CO, _I.REQUEST): (_CO, (_RESEND,)),
        (_CO, _I.TRANSPORT_ERROR): (_TE, (_Do.FAIL,)),
        (_CO, Timer.J): (_TE, ()),
    }


def client_transaction(
    request: Request, *, reliable: bool, timers: TimerConfig = DEFAULT_TIMERS, peer: object = None
) -> InviteClientTransaction | NonInviteClientTransaction:
    """The client machine for ``request`` (not started)."""
    cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
    return cls(request, reliable=reliable, timers=timers, peer=peer)


def server_transaction(
    request: Request, *, reliable: bool, timers: TimerConfig = DEFAULT_TIMERS, peer: object = None
) -> InviteServerTransaction | NonInviteServerTransaction:
    """The server machine for ``request`` (not started); ACK never creates one."""
    cls = InviteServerTransaction if request.method == "INVITE" else NonInviteServerTransaction
    return cls(request, reliable=reliable, timers=timers, peer=peer)


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK an INVITE client transaction sends for a 300-699 (§17.1.1.3).

    Same Request-URI, Call-ID, From, CSeq number and top Via as the INVITE,
    the To of the response, and the INVITE's Route headers.
    """
    src = invite.headers
    h = Headers()
    h.add("Via", src.get_all("Via")[0])
    h.add("Max-Forwards", src.get("Max-Forwards") or "70")
    for route in src.lines("Route"):
        h.add("Route", route)
    h.add("From", src.lines("From")[0])
    h.add("To", response.headers.lines("To")[0])
    h.add("Call-ID", src.lines("Call-ID")[0])
    h.add("CSeq", f"{parse_cseq(src.lines('CSeq')[0]).number} ACK")
    h.add("Content-Length", "0")
    return Request("ACK", invite.uri, invite.version, h)
