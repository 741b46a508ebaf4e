"""The SIP user agent core (RFC 3261 §8, §12-§15, RFC 3515, RFC 6026), sans-I/O.

Palaver answers calls: every dialog it has was created by an INVITE it
received.  The transport adapter feeds ``receive(message, peer, now)`` and
``transport_error(peer, now)``, then drains ``transmits()`` (what to send, to
which Peer), re-arms one timer at ``get_timer()`` (calling ``handle_timer``),
and hands ``next_event()`` to the application, whose commands (``accept``,
``bye``, ``refer`` ...) queue more transmits.  No sockets, clocks or tasks.

Every transaction runs in transaction.py's machines (the INVITE server
transaction sends 100 Trying by itself and absorbs retransmissions).  The core
owns what RFC 6026 leaves to the TU: the 2xx to an INVITE is retransmitted
over UDP (T1 doubling to T2) until its ACK; with no ACK in 64*T1 the core
sends BYE and reports ``CallEnded(reason="ack_timeout")``.

Choices (where the RFCs leave room or the brief and the RFCs differ):

* ``bye`` before the ACK of our 2xx is remembered and the BYE sent when the
  ACK arrives or the ACK timer runs out (§15: the callee MUST NOT send BYE on
  a confirmed dialog before either); ``bye`` on an unanswered call is an
  error (use ``reject``).
* Max-Forwards 0 is processed normally: we are the request's destination
  (RFC 4475 §3.3.11 ``zeromf``); 483 is a proxy's answer.
* An unknown method gets 501, a known one we do not take (REGISTER, REFER,
  SUBSCRIBE ...) 405, both with Allow (§8.2.1, §21.5.2, RFC 4475 ``intmeth``).
* A second offer while one is pending (re-INVITE, UPDATE with a body, or a
  re-INVITE before the ACK of our last 2xx) gets 500 with Retry-After
  (§14.2); we never send re-INVITEs, so there is no glare and no 491.
* An INVITE without a body (offer in our 2xx, answer in the ACK) is passed to
  the application as usual; the answer in the ACK is not reported.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable

from .dialog import Dialog, DialogId, dialog_id_of
from .digest import DigestError, authorization, choose_challenge
from .errors import SipParseError
from .headers import parse_cseq, parse_name_addr, parse_via
from .matching import MAGIC_COOKIE, TransactionTable
from .message import Message, Request, Response
from .peer import Peer, TransportName
from .status import make_response
from .transaction import (
    Action,
    ClientTransaction,
    Deliver,
    InviteServerTransaction,
    Send,
    ServerTransaction,
    Terminated,
    Timeout,
    Transaction,
    TransactionError,
    TransportFailed,
)
from .ua_events import (
    CallCancelled,
    CallConfirmed,
    CallEnded,
    IncomingCall,
    InfoReceived,
    ReferStatus,
    ReInvite,
    UaConfig,
    UaEvent,
    UaStateError,
)
from .ua_messages import (
    ACCEPT,
    Problem,
    capabilities,
    contact_uri,
    request_problem,
    response_peer,
    sipfrag_status,
    stamp_via,
)
from .ua_policy import Admit, Challenge, InboundPolicy
from .ua_state import CallState, Offer, Outgoing, Phase, Unacked
from .uri import parse_uri

__all__ = [
    "CallCancelled",
    "CallConfirmed",
    "CallEnded",
    "IncomingCall",
    "InfoReceived",
    "ReInvite",
    "ReferStatus",
    "UaConfig",
    "UaEvent",
    "UaStateError",
    "UserAgent",
]

log = logging.getLogger(__name__)


class UserAgent:
    """The UA core: one per SIP listener set.  See the module docstring for the I/O contract."""

    def __init__(self, config: UaConfig, *, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        if not config.contacts:
            raise ValueError("UaConfig.contacts needs at least one transport address")
        self.config = config
        self._random = random_bytes
        self._policy = InboundPolicy(
            config.allow_from,
            config.inbound_credentials,
            realm=config.realm,
            secret=random_bytes(32),
            algorithms=config.digest_algorithms,
            nonce_ttl=config.nonce_ttl,
        )
        self._table = TransactionTable(config.timers)
        self._out: list[tuple[Message, Peer]] = []
        self._events: deque[UaEvent] = deque()
        self._calls: dict[str, CallState] = {}
        self._dialogs: dict[DialogId, CallState] = {}
        self._server_owner: dict[Transaction, CallState] = {}
        self._outgoing: dict[Transaction, Outgoing] = {}
        self._count = 0

    # --- adapter interface ------------------------------------------------------------------

    def receive(self, message: Request | Response, peer: Peer, now: float) -> None:
        """A parsed message from ``peer``.  Never raises for anything the peer sent."""
        try:
            if isinstance(message, Response):
                self._on_response(message, now)
            else:
                self._on_request(message, peer, now)
        except Exception:
            log.exception("SIP UA: unexpected error handling a message from %s", peer)
            if isinstance(message, Request) and message.method != "ACK":
                self._stateless(message, peer, 500, "Internal error")

    def transport_error(self, peer: Peer, now: float) -> None:
        """A stream connection to ``peer`` failed or closed: fail the transactions that used it."""
        for tx in list(self._table):
            target = tx.peer
            if not isinstance(target, Peer) or target.transport != peer.transport or tx.terminated:
                continue
            same_conn = peer.connection is not None and target.connection == peer.connection
            if same_conn or (target.host, target.port) == (peer.host, peer.port):
                self._run(tx, tx.transport_error(now), now)

    def get_timer(self) -> float | None:
        """When ``handle_timer`` should next be called, or None."""
        times = [t for t in [self._table.get_timer()] if t is not None]
        for call in self._calls.values():
            if call.unacked is not None:
                times.append(call.unacked.give_up_at)
                if call.unacked.next_at is not None:
                    times.append(call.unacked.next_at)
        return min(times, default=None)

    def handle_timer(self, now: float) -> None:
        for tx, action in self._table.handle_timer(now):
            self._run(tx, [action], now)
        for call in list(self._calls.values()):
            unacked = call.unacked
            if unacked is None:
                continue
            if now >= unacked.give_up_at:
                self._ack_timeout(call, now)
            elif unacked.next_at is not None and now >= unacked.next_at:
                self._out.append((unacked.response, unacked.peer))
                unacked.interval = min(2 * unacked.interval, self.config.timers.t2)
                unacked.next_at = now + unacked.interval

    def transmits(self) -> list[tuple[Request | Response, Peer]]:
        """Drain what to send and where (call after every receive, timer and command)."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> UaEvent | None:
        return self._events.popleft() if self._events else None

    # --- commands ---------------------------------------------------------------------------

    def ringing(self, call: str, now: float) -> None:
        """Send 180 Ringing (with our To tag, Contact and the Record-Route)."""
        c = self._call(call, Phase.PENDING)
        self._respond(c.tx, self._dialog_response(c, c.invite, 180), now)

    def accept(self, call: str, sdp: bytes, now: float) -> None:
        """Answer 200 OK with ``sdp``; retransmitted over UDP until the ACK."""
        c = self._call(call, Phase.PENDING)
        ok = self._dialog_response(c, c.invite, 200, sdp)
        self._respond(c.tx, ok, now)
        c.phase = Phase.ACCEPTED
        self._expect_ack(c, c.tx, ok, now)

    def reject(self, call: str, status: int, now: float) -> None:
        """Answer a final 300-699; the call ends (``CallEnded(reason="rejected")``)."""
        if not 300 <= status <= 699:
            raise ValueError(f"reject needs a status in 300..699, not {status}")
        c = self._call(call, Phase.PENDING)
        self._respond(c.tx, self._response(c.invite, status, to_tag=c.dialog.local_tag), now)
        self._end(c, "rejected", status)

    def bye(self, call: str, now: float) -> None:
        """Hang up an answered call (deferred until the ACK if it has not come yet).

        Once the BYE is out, another ``bye`` does nothing; ``CallEnded(reason="hangup")``
        follows its final response (408 on timeout).
        """
        c = self._call(call)
        if c.phase is Phase.PENDING:
            raise UaStateError(f"call {call} is not answered: use reject")
        if c.phase is Phase.ACCEPTED:
            c.bye_wanted = True
        elif c.phase is Phase.CONFIRMED:
            self._send_bye(c, now)

    def refer(self, call: str, target_uri: str, now: float) -> None:
        """Send REFER (Refer-To ``target_uri``, Referred-By us); progress comes as ReferStatus."""
        c = self._call(call, Phase.CONFIRMED)
        if c.refer_active:
            raise UaStateError(f"call {call} already has a transfer in progress")
        try:
            target = parse_uri(target_uri.strip().strip("<>"))
        except SipParseError as exc:
            raise ValueError(f"bad transfer target {target_uri!r}: {exc.reason}") from None
        request = self._dialog_request(c, "REFER")
        if request is None:
            raise UaStateError(f"call {call} has no SIP route to send a REFER on")
        request.headers.add("Refer-To", f"<{target}>")
        request.headers.add("Referred-By", f"<{c.dialog.local_uri.uri}>")
        self._add_contact(request, c)
        c.refer_active = True
        self._send_request(c, request, now)

    def accept_reinvite(self, call: str, sdp: bytes, now: float) -> None:
        """Answer the pending re-INVITE or UPDATE with 200 and ``sdp``."""
        c = self._call(call)
        offer = self._offer(c)
        ok = self._dialog_response(c, offer.request, 200, sdp)
        c.dialog.refresh_target(offer.request)
        self._respond(offer.tx, ok, now)
        if offer.request.method == "INVITE":
            self._expect_ack(c, offer.tx, ok, now)

    def reject_reinvite(self, call: str, status: int, now: float) -> None:
        """Refuse the pending re-INVITE or UPDATE (e.g. 488); the session stays as it was."""
        if not 300 <= status <= 699:
            raise ValueError(f"reject_reinvite needs a status in 300..699, not {status}")
        c = self._call(call)
        offer = self._offer(c)
        self._respond(offer.tx, self._response(offer.request, status, to_tag=None), now)

    def calls(self) -> list[str]:
        """Handles of the calls that are not over."""
        return list(self._calls)

    # --- requests in ------------------------------------------------------------------------

    def _on_request(self, request: Request, peer: Peer, now: float) -> None:
        request = stamp_via(request, peer)
        reply_to = response_peer(request, peer)
        try:
            tx, actions = self._table.receive_request(request, now, reliable=peer.reliable, peer=reply_to)
        except TransactionError:
            return  # same key as a live transaction that did not match (RFC 2543 peer): drop
        if tx is None:
            for action in actions:
                if isinstance(action, Deliver) and isinstance(action.message, Request):
                    self._on_ack(action.message, now)
            return
        for action in actions:
            if isinstance(action, Deliver) and action.message is request and request.method != "ACK":
                try:
                    self._on_new_request(tx, request, peer, now)
                except SipParseError as exc:  # a header the parser left unchecked is malformed
                    last = tx.last_response
                    if not tx.terminated and (last is None or last.status < 200):
                        resp = self._response(request, exc.status, exc.reason, to_tag=self._tag())
                        self._respond(tx, resp, now)
            else:
                self._run(tx, [action], now)

    def _on_new_request(self, tx: ServerTransaction, request: Request, peer: Peer, now: float) -> None:
        method = request.method
        if method == "CANCEL":
            self._on_cancel(tx, request, now)
            return
        did = dialog_id_of(request)
        if did is None:
            decision = self._policy.check(
                method, str(request.uri), request.headers.get_all("Authorization"), peer, now
            )
            if isinstance(decision, Challenge):
                resp = self._response(request, 401, to_tag=self._tag())
                for value in decision.www_authenticate:
                    resp.headers.add("WWW-Authenticate", value)
                self._respond(tx, resp, now)
                return
            if not isinstance(decision, Admit):
                self._respond(tx, self._response(request, 403, to_tag=self._tag()), now)
                return
        error = self._check(request, in_dialog=did is not None)
        if error is not None:
            self._respond(tx, error, now)
            return
        if did is not None:
            call = self._dialogs.get(did)
            if call is None:
                self._respond(tx, self._response(request, 481), now)
                return
            self._in_dialog(call, tx, request, now)
            return
        if method == "INVITE":
            assert isinstance(tx, InviteServerTransaction)
            self._new_call(tx, request, peer, now)
        elif method == "OPTIONS":
            self._respond(tx, self._capabilities(request, self._tag()), now)
        else:  # BYE, INFO, UPDATE, NOTIFY, PRACK outside any dialog (§12.2.2, RFC 6665)
            self._respond(tx, self._response(request, 481, to_tag=self._tag()), now)

    def _check(self, request: Request, *, in_dialog: bool) -> Response | None:
        """The §8.2 checks (see ``request_problem``), plus §8.2.2.2 merged requests (482)."""
        tag = None if in_dialog else self._tag()
        problem = request_problem(request, in_dialog=in_dialog)
        if problem is None and not in_dialog and request.method == "INVITE" and self._merged(request):
            problem = Problem(482)
        if problem is None:
            return None
        resp = self._response(request, problem.status, problem.reason, to_tag=tag)
        for name, value in problem.headers:
            resp.headers.add(name, value)
        if problem.status in (405, 501):
            capabilities(resp.headers)
        return resp

    def _merged(self, invite: Request) -> bool:
        """§8.2.2.2: same Call-ID, From tag and CSeq as a live INVITE that did not match it."""
        h = invite.headers
        key = (h.lines("Call-ID")[0].strip(), parse_name_addr(h.lines("From")[0], "From").tag or "")
        number = parse_cseq(h.lines("CSeq")[0]).number
        for call in self._calls.values():
            d = call.dialog
            same = (d.call_id, d.remote_tag) == key and not call.tx.terminated
            if same and parse_cseq(call.invite.headers.lines("CSeq")[0]).number == number:
                return True
        return False

    def _new_call(self, tx: InviteServerTransaction, invite: Request, peer: Peer, now: float) -> None:
        local_tag = self._tag()
        self._count += 1
        handle = f"sip-{self._count}-{local_tag[:8]}"
        dialog = Dialog.from_invite(invite, local_tag, peer)
        assert isinstance(tx.peer, Peer)
        call = CallState(handle, invite, peer, tx.peer, tx, dialog)
        self._calls[handle] = call
        self._dialogs[dialog.id] = call
        self._server_owner[tx] = call
        self._events.append(IncomingCall(handle, invite, peer))

    def _on_cancel(self, tx: ServerTransaction, cancel: Request, now: float) -> None:
        """§9.2: 200 to the CANCEL; 487 to the INVITE if it has no final response yet."""
        invite_tx = self._table.match_cancel(cancel)
        if invite_tx is None:
            self._respond(tx, self._response(cancel, 481, to_tag=self._tag()), now)
            return
        call = self._server_owner.get(invite_tx)
        tag = call.dialog.local_tag if call is not None else self._tag()
        self._respond(tx, self._response(cancel, 200, to_tag=tag), now)
        if call is None or (invite_tx.last_response is not None and invite_tx.last_response.status >= 200):
            return  # too late: the CANCEL has no effect
        self._respond(invite_tx, self._response(invite_tx.request, 487, to_tag=tag), now)
        if call.tx is invite_tx:
            self._end(call, None, None)
            self._events.append(CallCancelled(call.handle))
        elif call.offer is not None and call.offer.tx is invite_tx:
            call.offer = None  # a cancelled re-INVITE: the session stays as it was

    def _on_ack(self, ack: Request, now: float) -> None:
        """The ACK of a 2xx (a transaction of its own, §13.2.2.4): confirm the call or the re-INVITE."""
        did = dialog_id_of(ack)
        call = self._dialogs.get(did) if did is not None else None
        if call is None or call.unacked is None:
            return
        if parse_cseq(ack.headers.lines("CSeq")[0]).number != call.unacked.cseq:
            return
        call.unacked = None
        if call.phase is Phase.ACCEPTED:
            call.phase = Phase.CONFIRMED
            self._events.append(CallConfirmed(call.handle))
            if call.bye_wanted:
                self._send_bye(call, now)

    def _in_dialog(self, call: CallState, tx: ServerTransaction, request: Request, now: float) -> None:
        method = request.method
        if not call.dialog.accept_remote_cseq(parse_cseq(request.headers.lines("CSeq")[0]).number):
            self._respond(tx, self._response(request, 500, "CSeq out of order"), now)
            return
        if method == "BYE":
            self._respond(tx, self._response(request, 200), now)
            if call.phase is Phase.PENDING:  # BYE on an early dialog (§15.1.2)
                self._respond(call.tx, self._response(call.invite, 487, to_tag=call.dialog.local_tag), now)
            self._end(call, "bye", None)
        elif method in ("INVITE", "UPDATE"):
            self._on_offer(call, tx, request, now)
        elif method == "INFO":
            self._respond(tx, self._response(request, 200), now)
            self._events.append(InfoReceived(call.handle, request.headers.get("Content-Type"), request.body))
        elif method == "OPTIONS":
            self._respond(tx, self._capabilities(request, None), now)
        elif method == "NOTIFY":
            self._on_notify(call, tx, request, now)
        else:
            self._respond(tx, self._response(request, 405), now)

    def _on_offer(self, call: CallState, tx: ServerTransaction, request: Request, now: float) -> None:
        if request.method == "UPDATE" and not request.body:
            call.dialog.refresh_target(request)  # a target refresh with no offer
            self._respond(tx, self._dialog_response(call, request, 200), now)
            return
        busy = call.offer is not None or call.unacked is not None or call.phase is not Phase.CONFIRMED
        if busy:
            resp = self._response(request, 500, "Offer pending")
            resp.headers.add("Retry-After", "1")
            self._respond(tx, resp, now)
            return
        call.offer = Offer(tx, request)
        self._server_owner[tx] = call
        self._events.append(ReInvite(call.handle, request.body or None))

    def _on_notify(self, call: CallState, tx: ServerTransaction, request: Request, now: float) -> None:
        """RFC 3515 §2.4.4: NOTIFYs of our REFER's implicit subscription, with a sipfrag status."""
        event = (request.headers.get("Event") or "").partition(";")[0].strip().lower()
        if not event:
            self._respond(tx, self._response(request, 400, "Missing Event header"), now)
            return
        if event != "refer":
            self._respond(tx, self._response(request, 489), now)
            return
        if not call.refer_active:
            self._respond(tx, self._response(request, 481, "No such subscription"), now)
            return
        status = sipfrag_status(request.body)
        if status is None:
            self._respond(tx, self._response(request, 400, "Bad message/sipfrag body"), now)
            return
        self._respond(tx, self._response(request, 200), now)
        state = (request.headers.get("Subscription-State") or "").partition(";")[0].strip().lower()
        final = state == "terminated" or status >= 200
        if final:
            call.refer_active = False
        self._events.append(ReferStatus(call.handle, status, final))

    # --- responses in -----------------------------------------------------------------------

    def _on_response(self, response: Response, now: float) -> None:
        tx, actions = self._table.receive_response(response, now)
        if tx is not None:
            self._run(tx, actions, now)
        # else: a stray (or a 2xx retransmission for an INVITE we never sent): drop

    def _client_result(self, out: Outgoing, status: int, response: Response | None, now: float) -> None:
        if status < 200:
            return
        call = out.call
        challenged = status in (401, 407) and response is not None and not out.authorized
        if challenged and response is not None and self._retry_with_credentials(out, response, now):
            return
        if out.request.method == "BYE":
            self._end(call, "hangup", status)
        elif out.request.method == "REFER" and call.phase is not Phase.ENDED:
            final = status >= 300
            if final:
                call.refer_active = False
            self._events.append(ReferStatus(call.handle, status, final))

    def _retry_with_credentials(self, out: Outgoing, response: Response, now: float) -> bool:
        """Re-send a challenged request once with credentials and the next CSeq (§22.2)."""
        creds = self.config.trunk_credentials
        proxy = response.status == 407
        challenge = choose_challenge(
            response.headers.get_all("Proxy-Authenticate" if proxy else "WWW-Authenticate"),
            "Proxy-Authenticate" if proxy else "WWW-Authenticate",
        )
        if (
            creds is None
            or challenge is None
            or (out.call.phase is Phase.ENDED and out.request.method != "BYE")
        ):
            return False
        old = out.request
        request = Request(old.method, old.uri, old.version, old.headers.copy(), old.body)
        request.headers.set("Via", self._via(parse_via(old.headers.get_all("Via")[0]).transport.lower()))
        request.headers.set("CSeq", f"{out.call.dialog.next_cseq()} {old.method}")
        try:
            value = authorization(
                challenge,
                method=old.method,
                uri=str(old.uri),
                username=creds[0],
                password=creds[1],
                cnonce=self._random(8).hex(),
                body=old.body,
            )
        except DigestError:
            return False
        request.headers.add("Proxy-Authorization" if proxy else "Authorization", value)
        self._send_request(out.call, request, now, authorized=True)
        return True

    # --- transactions -----------------------------------------------------------------------

    def _run(self, tx: Transaction, actions: list[Action], now: float) -> None:
        """Carry out a transaction's actions."""
        for action in actions:
            if isinstance(action, Send):
                assert isinstance(tx.peer, Peer)
                self._out.append((action.message, tx.peer))
            elif isinstance(action, Deliver):
                msg = action.message
                if isinstance(tx, ClientTransaction) and isinstance(msg, Response):
                    out = self._outgoing.get(tx)
                    if out is not None:
                        self._client_result(out, msg.status, msg, now)
                elif isinstance(msg, Request) and msg.method == "ACK":
                    self._on_ack(msg, now)
            elif isinstance(action, Timeout | TransportFailed):
                out = self._outgoing.get(tx)
                if out is not None:
                    self._client_result(out, 408 if isinstance(action, Timeout) else 503, None, now)
                elif isinstance(action, TransportFailed):
                    call = self._server_owner.get(tx)
                    if call is not None and call.tx is tx and call.phase is Phase.PENDING:
                        self._end(call, "transport_error", None)
            elif isinstance(action, Terminated):
                self._outgoing.pop(tx, None)
                self._server_owner.pop(tx, None)

    def _respond(self, tx: ServerTransaction, response: Response, now: float) -> None:
        try:
            actions = tx.send_response(response, now)
        except TransactionError as exc:
            raise UaStateError(f"cannot send {response.status} now: {exc}") from None
        self._run(tx, actions, now)

    def _send_request(
        self, call: CallState, request: Request, now: float, *, authorized: bool = False
    ) -> None:
        dest = call.dialog.destination()
        assert dest is not None  # _dialog_request checked it
        tx, actions = self._table.start_client(request, now, reliable=dest.reliable, peer=dest)
        self._outgoing[tx] = Outgoing(call, request, authorized)
        self._run(tx, actions, now)

    # --- call bookkeeping -------------------------------------------------------------------

    def _call(self, handle: str, *phases: Phase) -> CallState:
        call = self._calls.get(handle)
        if call is None:
            raise UaStateError(f"unknown or ended call {handle!r}")
        if phases and call.phase not in phases:
            raise UaStateError(f"call {handle} is {call.phase}, not {' or '.join(phases)}")
        return call

    def _offer(self, call: CallState) -> Offer:
        offer = call.offer
        if offer is None:
            raise UaStateError(f"call {call.handle} has no pending re-INVITE or UPDATE")
        call.offer = None
        return offer

    def _expect_ack(self, call: CallState, tx: ServerTransaction, ok: Response, now: float) -> None:
        t1 = self.config.timers.t1
        cseq = parse_cseq(ok.headers.lines("CSeq")[0]).number
        peer = tx.peer if isinstance(tx.peer, Peer) else call.reply_to
        next_at = None if peer.reliable else now + t1
        call.unacked = Unacked(ok, peer, cseq, t1, next_at, now + 64 * t1)

    def _ack_timeout(self, call: CallState, now: float) -> None:
        """64*T1 without the ACK of our 2xx: the session ends with a BYE (§13.3.1.4)."""
        call.unacked = None
        wanted = call.bye_wanted
        if call.phase is Phase.ACCEPTED:
            call.phase = Phase.CONFIRMED
        self._send_bye(call, now)
        if not wanted:
            self._end(call, "ack_timeout", None)

    def _send_bye(self, call: CallState, now: float) -> None:
        call.phase = Phase.ENDING
        request = self._dialog_request(call, "BYE")
        if request is None:
            self._end(call, "hangup", None)
            return
        self._send_request(call, request, now)

    def _end(self, call: CallState, reason: str | None, status: int | None) -> None:
        """Forget the call (once) and report it; ``reason`` None reports nothing (CANCEL has its own)."""
        if call.phase is Phase.ENDED:
            return
        call.phase = Phase.ENDED
        call.unacked = None
        call.offer = None
        self._calls.pop(call.handle, None)
        if self._dialogs.get(call.dialog.id) is call:
            del self._dialogs[call.dialog.id]
        if reason is not None:
            self._events.append(CallEnded(call.handle, reason, status))

    # --- building messages ------------------------------------------------------------------

    def _tag(self) -> str:
        return self._random(8).hex()

    def _address(self, transport: TransportName) -> tuple[str, int]:
        contacts = self.config.contacts
        return contacts.get(transport) or next(iter(contacts.values()))

    def _via(self, transport: str) -> str:
        name: TransportName = "tls" if transport == "tls" else "tcp" if transport == "tcp" else "udp"
        host, port = self._address(name)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        branch = MAGIC_COOKIE + self._random(10).hex()
        return f"SIP/2.0/{name.upper()} {host}:{port};branch={branch};rport"

    def _contact(self, call: CallState) -> str:
        transport = call.peer.transport
        host, port = self._address(transport)
        return contact_uri(host, port, transport, secure=call.dialog.secure, user=self.config.contact_user)

    def _add_contact(self, message: Request | Response, call: CallState) -> None:
        message.headers.add("Contact", self._contact(call))

    def _response(
        self, request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None
    ) -> Response:
        resp = make_response(request, status, reason, to_tag=to_tag)
        resp.headers.add("Server", self.config.user_agent)
        return resp

    def _capabilities(self, request: Request, to_tag: str | None) -> Response:
        resp = self._response(request, 200, to_tag=to_tag)
        capabilities(resp.headers, accept=True)
        return resp

    def _dialog_response(
        self, call: CallState, request: Request, status: int, sdp: bytes | None = None
    ) -> Response:
        """A 18x/2xx in the call's dialog: To tag, Contact, Allow, Record-Route (initial INVITE), SDP."""
        resp = self._response(request, status, to_tag=call.dialog.local_tag)
        if request is call.invite:
            for value in request.headers.lines("Record-Route"):  # §12.1.1
                resp.headers.add("Record-Route", value)
        self._add_contact(resp, call)
        capabilities(resp.headers)
        if sdp is not None:
            resp.headers.add("Content-Type", ACCEPT)
            resp.body = sdp
        return resp

    def _dialog_request(self, call: CallState, method: str) -> Request | None:
        dest = call.dialog.destination()
        if dest is None:
            return None
        request = call.dialog.request(method, self._via(dest.transport))
        request.headers.add("User-Agent", self.config.user_agent)
        return request

    def _stateless(self, request: Request, peer: Peer, status: int, reason: str) -> None:
        try:
            resp = make_response(request, status, reason, to_tag=self._tag())
            self._out.append((resp, response_peer(request, peer)))
        except Exception:
            log.exception("SIP UA: cannot answer %s", request.method)
