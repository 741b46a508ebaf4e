"""Transaction matching (§17.1.3, §17.2.3 with the RFC 2543 fallback) and the TransactionTable."""

from __future__ import annotations

import pytest

from palaver.sip import (
    Deliver,
    InviteServerTransaction,
    NonInviteServerTransaction,
    Request,
    Response,
    Send,
    State,
    Terminated,
    Timeout,
    Timer,
    TransactionError,
    TransactionTable,
    client_key,
    is_rfc3261_branch,
    make_response,
    parse_message,
    server_key,
)
from palaver.sip.transaction import Action

from .conftest import load
from .sipmsg import request, response


def parsed(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def test_magic_cookie() -> None:
    assert is_rfc3261_branch("z9hG4bK776asdhds")
    assert not is_rfc3261_branch("z9hG4bK")  # RFC 4475 badbranch: the cookie alone
    assert not is_rfc3261_branch("776asdhds") and not is_rfc3261_branch(None)


def test_client_matching_on_branch_and_cseq_method() -> None:
    table = TransactionTable()
    invite = request()
    tx, actions = table.start_client(invite, 0.0, reliable=False)
    assert actions == [Send(invite, invite.to_bytes())] and len(table) == 1
    assert client_key(invite) == ("z9hG4bK776asdhds", "INVITE")
    ringing = response(invite, 180)
    assert table.match_response(ringing) is tx
    assert table.receive_response(ringing, 0.1) == (tx, [Deliver(ringing)])
    # The CANCEL shares the branch but is its own transaction (CSeq method differs).
    cancel = request("CANCEL")
    assert table.match_response(response(cancel, 200)) is None
    ctx, _ = table.start_client(cancel, 0.2, reliable=False)
    assert table.match_response(response(cancel, 200)) is ctx and len(table) == 2
    other = response(request(branch="z9hG4bKother"), 200)
    assert table.receive_response(other, 0.3) == (None, [Deliver(other)])  # stray: the core decides
    with pytest.raises(TransactionError):
        table.start_client(invite, 0.4, reliable=False)


def test_server_matching_rfc3261() -> None:
    table = TransactionTable()
    invite = request()
    tx, actions = table.receive_request(invite, 0.0, reliable=False)
    assert isinstance(tx, InviteServerTransaction) and actions == [Deliver(invite)]
    again, [trying] = table.receive_request(invite, 0.1, reliable=False)  # retransmission: 100 at once
    assert again is tx and isinstance(trying, Send) and isinstance(trying.message, Response)
    assert trying.message.status == 100
    # Same branch from another sent-by is another transaction (a different client).
    elsewhere = request(sent_by="pc34.example.com")
    assert table.match_request(elsewhere) is None
    # The CANCEL gets its own server transaction and finds the INVITE it cancels.
    cancel = request("CANCEL")
    ctx, cactions = table.receive_request(cancel, 0.2, reliable=False)
    assert isinstance(ctx, NonInviteServerTransaction) and ctx is not tx and cactions == [Deliver(cancel)]
    assert table.match_cancel(cancel) is tx
    assert table.match_cancel(request("CANCEL", branch="z9hG4bKnope")) is None
    # The ACK of a non-2xx carries the INVITE's branch and is matched to its transaction.
    table.receive_request(request("INFO", branch="z9hG4bKinfo"), 0.2, reliable=False)
    tx.send_response(response(invite, 486), 0.3)
    ack = request("ACK", to_tag="314", cseq_method="ACK")
    assert server_key(ack) == server_key(invite)
    assert table.receive_request(ack, 0.4, reliable=False) == (tx, []) and tx.state is State.CONFIRMED
    # The ACK of a 2xx has a new branch: no transaction, straight to the TU.
    ack2xx = request("ACK", branch="z9hG4bKack2xx", to_tag="314", cseq_method="ACK")
    assert table.receive_request(ack2xx, 0.5, reliable=False) == (None, [Deliver(ack2xx)])


def test_badbranch_falls_back_to_rfc2543_matching() -> None:
    data = load("transaction", "badbranch")
    options = parsed(data)
    key = server_key(options)
    assert key[0] == "2543"
    table = TransactionTable()
    tx, actions = table.receive_request(options, 0.0, reliable=False)
    assert isinstance(tx, NonInviteServerTransaction) and actions == [Deliver(options)]
    assert table.match_request(parsed(data)) is tx  # a byte-identical retransmission matches
    # Another request with the same bare-cookie branch but another Call-ID is a new transaction.
    other = parsed(data.replace(b"badbranch.sadonfo", b"badbranch.different"))
    assert table.match_request(other) is None
    assert table.match_request(parsed(data.replace(b"CSeq: 8", b"CSeq: 9"))) is None
    assert table.match_request(parsed(data.replace(b"tag=33242", b"tag=99999"))) is None
    tagged = parsed(data.replace(b"To: sip:user@example.com", b"To: sip:user@example.com;tag=x"))
    assert table.match_request(tagged) is None
    sent = tx.send_response(make_response(options, 200, to_tag="srv"), 0.1)
    assert table.receive_request(parsed(data), 0.2, reliable=False) == (tx, sent)  # the 200 again


def test_rfc2543_invite_and_its_ack() -> None:
    data = load("compat", "inv2543")
    invite = parsed(data)
    assert server_key(invite)[0] == "2543"
    table = TransactionTable()
    tx, _ = table.receive_request(invite, 0.0, reliable=False)
    assert isinstance(tx, InviteServerTransaction)
    assert table.match_request(parsed(data)) is tx
    tx.send_response(make_response(invite, 486, to_tag="2543srv"), 0.1)
    ack_head = data[: data.index(b"\r\n\r\n")].replace(b"INVITE sip:", b"ACK sip:", 1)
    ack_head = ack_head.replace(b"56 INVITE", b"56 ACK")
    ack_head = ack_head.replace(b";user=phone\r\nCall-ID", b";user=phone;tag=2543srv\r\nCall-ID")
    ack = parsed(ack_head + b"\r\nContent-Length: 0\r\n\r\n")
    assert table.match_request(ack) is tx  # To tag of the ACK = To tag of our response
    wrong = parsed(ack.to_bytes().replace(b"tag=2543srv", b"tag=someone-else"))
    assert table.match_request(wrong) is None
    assert table.receive_request(ack, 0.2, reliable=False) == (tx, []) and tx.state is State.CONFIRMED


def test_table_timers_and_collection() -> None:
    table = TransactionTable()
    assert table.get_timer() is None
    invite = request()
    table.start_client(invite, 0.0, reliable=False)
    table.start_client(request("OPTIONS", branch="z9hG4bKopt"), 0.0, reliable=True)
    bye = request("BYE", branch="z9hG4bKbye")
    stx, _ = table.receive_request(bye, 0.0, reliable=False)
    assert stx is not None
    stx.send_response(response(bye, 200), 0.1)
    assert table.get_timer() == 0.5 and len(table) == 3
    fired = table.handle_timer(0.5)
    assert [type(a).__name__ for _, a in fired] == ["Send"]
    t = 0.5
    events: list[Action] = []
    while (when := table.get_timer()) is not None:
        t = when
        events += [a for _, a in table.handle_timer(when)]
    assert len(table) == 0 and t == pytest.approx(32.1)  # J of the BYE (64*T1 after 0.1) is last
    assert events.count(Terminated()) == 3
    assert Timeout(Timer.B) in events and Timeout(Timer.F) in events


def test_terminated_transactions_never_match() -> None:
    table = TransactionTable()
    bye = request("BYE")
    tx, _ = table.receive_request(bye, 0.0, reliable=True)
    assert tx is not None
    assert tx.send_response(response(bye, 200), 0.1)[-1] == Terminated()  # J = 0 on TCP
    new, actions = table.receive_request(bye, 0.2, reliable=True)
    assert new is not tx and actions == [Deliver(bye)] and len(table) == 1


def test_lossy_udp_call_setup_between_two_tables() -> None:
    """A UAC and a UAS over a link that drops the first INVITE and the first 486."""
    uac, uas = TransactionTable(), TransactionTable()
    invite = request()
    ctx, out = uac.start_client(invite, 0.0, reliable=False)
    dropped = {"INVITE": 1, "486": 1}
    wire: list[tuple[str, bytes]] = []  # (towards, bytes)
    tu_uac: list[Response] = []
    tu_uas: list[Request] = []

    def emit(towards: str, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Send):
                label = a.message.method if isinstance(a.message, Request) else str(a.message.status)
                if dropped.get(label, 0):
                    dropped[label] -= 1
                    continue
                wire.append((towards, a.data))
            elif isinstance(a, Deliver):
                if isinstance(a.message, Response):
                    tu_uac.append(a.message)
                else:
                    tu_uas.append(a.message)

    def deliver(now: float) -> None:
        while wire:
            towards, data = wire.pop(0)
            msg = parse_message(data)
            if towards == "uas":
                assert isinstance(msg, Request)
                stx, acts = uas.receive_request(msg, now, reliable=False)
                emit("uac", acts)
                if acts and isinstance(acts[0], Deliver) and msg.method == "INVITE":
                    assert isinstance(stx, InviteServerTransaction)
                    emit("uac", stx.send_response(make_response(msg, 486, to_tag="uas1"), now))
            else:
                assert isinstance(msg, Response)
                emit("uas", uac.receive_response(msg, now)[1])

    emit("uas", out)
    now = 0.0
    for _ in range(50):
        deliver(now)
        timers = [t for t in (uac.get_timer(), uas.get_timer()) if t is not None]
        if not timers:
            break
        now = min(timers)
        emit("uas", [a for _, a in uac.handle_timer(now)])
        emit("uac", [a for _, a in uas.handle_timer(now)])
    assert [m.method for m in tu_uas] == ["INVITE"]  # the retransmitted INVITE reached the TU once
    assert [r.status for r in tu_uac] == [486]  # the retransmitted 486 (Timer G) reached the UAC once
    assert ctx.terminated and len(uac) == 0 and len(uas) == 0
    # INVITE lost at 0, resent by Timer A at 0.5; its 486 lost, resent by Timer G at 1.0;
    # the UAC's Timer D (32 s) from then on is the last timer.
    assert now == pytest.approx(33.0)
