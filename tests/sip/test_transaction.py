"""The four RFC 3261 §17 transaction machines on virtual time (no sleeps, no sockets)."""

from __future__ import annotations

import pytest

from palaver.sip import (
    Action,
    Deliver,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Request,
    Response,
    Send,
    State,
    Terminated,
    Timeout,
    Timer,
    TimerConfig,
    Transaction,
    TransactionError,
    TransportFailed,
    client_transaction,
    parse_cseq,
    parse_message,
    parse_name_addr,
    server_transaction,
)

from .sipmsg import request, response

Log = list[tuple[float, Action]]


def run(tx: Transaction, until: float) -> Log:
    """Fire the transaction's timers in order up to ``until``; (time, action) for each action."""
    log: Log = []
    while (when := tx.get_timer()) is not None and when <= until:
        log += [(when, a) for a in tx.handle_timer(when)]
    return log


def sends(log: Log) -> list[float]:
    return [round(t, 6) for t, a in log if isinstance(a, Send)]


def kinds(actions: list[Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


# --- INVITE client (Figure 5) -------------------------------------------------------------


def test_ict_timer_a_doubles_until_timer_b() -> None:
    invite = request()
    tx = InviteClientTransaction(invite, reliable=False)
    first = tx.start(0.0)
    assert first == [Send(invite, invite.to_bytes())] and tx.state is State.CALLING
    assert tx.get_timer() == 0.5
    log = run(tx, 100.0)
    # A: 0.5, 1, 2, 4, 8, 16 (no T2 cap for INVITE); B = 64*T1 = 32 s ends it.
    assert sends(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(a == first[0] for _, a in log if isinstance(a, Send))
    assert log[-2:] == [(32.0, Timeout(Timer.B)), (32.0, Terminated())]
    assert tx.terminated and tx.get_timer() is None


def test_ict_reliable_has_no_timer_a() -> None:
    tx = InviteClientTransaction(request(), reliable=True)
    tx.start(0.0)
    assert tx.get_timer() == 32.0
    assert run(tx, 100.0) == [(32.0, Timeout(Timer.B)), (32.0, Terminated())]


def test_ict_provisional_then_failure_acks_and_waits_timer_d() -> None:
    invite = request(route=True)
    tx = InviteClientTransaction(invite, reliable=False)
    tx.start(0.0)
    ringing = response(invite, 180)
    assert tx.receive_response(ringing, 0.3) == [Deliver(ringing)]
    assert tx.state is State.PROCEEDING and tx.get_timer() is None  # A and B stop in Proceeding
    busy = response(invite, 486)
    actions = tx.receive_response(busy, 2.0)
    assert kinds(actions) == ["Deliver", "Send"] and tx.state is State.COMPLETED
    ack = actions[1]
    assert isinstance(ack, Send) and isinstance(ack.message, Request)
    h = ack.message.headers
    assert ack.message.method == "ACK" and ack.message.uri == invite.uri
    assert h.get_all("Via") == invite.headers.get_all("Via")[:1]
    assert h.lines("Route") == invite.headers.lines("Route")
    assert parse_name_addr(h.get("To") or "", "To").tag == "314"
    assert h.get("From") == invite.headers.get("From") and h.get("Call-ID") == invite.headers.get("Call-ID")
    assert parse_cseq(h.get("CSeq") or "") == parse_cseq("1 ACK")
    assert parse_message(ack.data) == ack.message
    # A retransmitted final response gets the same ACK again and is not passed up.
    assert tx.receive_response(busy, 3.0) == [ack]
    assert tx.get_timer() == 34.0  # Timer D = 32 s
    assert run(tx, 100.0) == [(34.0, Terminated())]
    assert tx.receive_response(busy, 40.0) == []


def test_ict_reliable_failure_terminates_at_once() -> None:
    invite = request()
    tx = InviteClientTransaction(invite, reliable=True)
    tx.start(0.0)
    assert kinds(tx.receive_response(response(invite, 603), 1.0)) == ["Deliver", "Send", "Terminated"]


def test_ict_2xx_is_accepted_and_retransmissions_reach_the_tu() -> None:
    invite = request()
    tx = InviteClientTransaction(invite, reliable=False)
    tx.start(0.0)
    ok = response(invite, 200)
    assert tx.receive_response(ok, 0.2) == [Deliver(ok)]  # no ACK: the TU acknowledges a 2xx
    assert tx.state is State.ACCEPTED and tx.get_timer() == pytest.approx(32.2)  # Timer M
    assert tx.receive_response(ok, 1.0) == [Deliver(ok)]
    assert tx.receive_response(response(invite, 180), 1.1) == []
    assert run(tx, 100.0) == [(pytest.approx(32.2), Terminated())]


def test_ict_transport_error() -> None:
    tx = InviteClientTransaction(request(), reliable=False)
    tx.start(0.0)
    assert tx.transport_error(0.1) == [TransportFailed(), Terminated()]
    assert tx.get_timer() is None and tx.transport_error(0.2) == []


# --- non-INVITE client (Figure 6) ---------------------------------------------------------


def test_nict_timer_e_caps_at_t2_then_timer_f() -> None:
    tx = NonInviteClientTransaction(request("OPTIONS"), reliable=False)
    tx.start(0.0)
    log = run(tx, 100.0)
    # E: 0.5, 1, 2, then T2 = 4 each time; F = 32 s.
    assert sends(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-2:] == [(32.0, Timeout(Timer.F)), (32.0, Terminated())]


def test_nict_proceeding_retransmits_every_t2_and_f_still_runs() -> None:
    options = request("OPTIONS")
    tx = NonInviteClientTransaction(options, reliable=False)
    tx.start(0.0)
    trying = response(options, 100)
    assert tx.receive_response(trying, 0.2) == [Deliver(trying)] and tx.state is State.PROCEEDING
    log = run(tx, 100.0)
    assert sends(log) == [0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert log[-2:] == [(32.0, Timeout(Timer.F)), (32.0, Terminated())]


def test_nict_final_response_then_timer_k_absorbs_retransmissions() -> None:
    bye = request("BYE")
    tx = NonInviteClientTransaction(bye, reliable=False)
    tx.start(0.0)
    ok = response(bye, 200)
    assert tx.receive_response(ok, 0.7) == [Deliver(ok)] and tx.state is State.COMPLETED
    assert tx.get_timer() == pytest.approx(5.7)  # K = T4
    assert tx.receive_response(ok, 1.0) == []
    assert tx.receive_response(response(bye, 500), 1.0) == []
    assert run(tx, 100.0) == [(pytest.approx(5.7), Terminated())]


def test_nict_reliable_k_is_zero_and_no_e() -> None:
    bye = request("BYE")
    tx = NonInviteClientTransaction(bye, reliable=True)
    tx.start(0.0)
    assert tx.get_timer() == 32.0
    assert kinds(tx.receive_response(response(bye, 481), 1.0)) == ["Deliver", "Terminated"]


def test_custom_t1_t2_t4() -> None:
    timers = TimerConfig(t1=0.1, t2=0.3, t4=1.0)
    tx = NonInviteClientTransaction(request("REGISTER"), reliable=False, timers=timers)
    tx.start(0.0)
    log = run(tx, 100.0)
    assert sends(log)[:5] == [0.1, 0.3, 0.6, 0.9, 1.2]
    assert log[-1] == (pytest.approx(6.4), Terminated())
    ict = InviteClientTransaction(request(), reliable=False, timers=timers)
    ict.start(0.0)
    assert sends(run(ict, 100.0)) == [0.1, 0.3, 0.7, 1.5, 3.1, 6.3]  # B = 6.4


# --- INVITE server (Figure 7) -------------------------------------------------------------


def test_ist_sends_100_after_200ms_unless_the_tu_answers() -> None:
    invite = request()
    tx = InviteServerTransaction(invite, reliable=False)
    assert tx.start(0.0) == [Deliver(invite)] and tx.state is State.PROCEEDING
    assert tx.get_timer() == 0.2
    [(when, trying)] = run(tx, 10.0)
    assert when == 0.2 and isinstance(trying, Send) and isinstance(trying.message, Response)
    assert trying.message.status == 100
    assert parse_name_addr(trying.message.headers.get("To") or "", "To").tag is None
    # A retransmitted INVITE gets the latest provisional again; the TU never sees it.
    assert tx.receive_request(invite, 0.9) == [trying]
    ringing = response(invite, 180)
    [sent] = tx.send_response(ringing, 1.0)
    assert tx.receive_request(invite, 1.5) == [sent] and isinstance(sent, Send) and sent.message == ringing

    quick = InviteServerTransaction(invite, reliable=False)
    quick.start(0.0)
    quick.send_response(response(invite, 180), 0.1)
    assert quick.get_timer() is None  # the TU answered within 200 ms: no 100 from us


def test_ist_retransmission_before_the_100_gets_it_at_once() -> None:
    invite = request()
    tx = InviteServerTransaction(invite, reliable=False)
    tx.start(0.0)
    [trying] = tx.receive_request(invite, 0.05)
    assert isinstance(trying, Send) and isinstance(trying.message, Response) and trying.message.status == 100
    assert tx.get_timer() is None


def test_ist_trying_disabled() -> None:
    tx = InviteServerTransaction(request(), reliable=False, timers=TimerConfig(trying=None))
    tx.start(0.0)
    assert tx.get_timer() is None


def test_ist_failure_retransmits_with_g_until_h() -> None:
    invite = request()
    tx = InviteServerTransaction(invite, reliable=False)
    tx.start(0.0)
    busy = response(invite, 486)
    [sent] = tx.send_response(busy, 0.1)
    assert tx.state is State.COMPLETED
    log = run(tx, 100.0)
    # G: 0.5, 1, 2, 4 (capped at T2), 4, ...; H = 64*T1 after entering Completed.
    assert sends(log) == pytest.approx([0.6, 1.6, 3.6, 7.6, 11.6, 15.6, 19.6, 23.6, 27.6, 31.6])
    assert all(a == sent for _, a in log if isinstance(a, Send))
    assert log[-2:] == [(pytest.approx(32.1), Timeout(Timer.H)), (pytest.approx(32.1), Terminated())]


def test_ist_ack_absorbed_then_timer_i() -> None:
    invite = request()
    tx = InviteServerTransaction(invite, reliable=False)
    tx.start(0.0)
    [sent] = tx.send_response(response(invite, 404), 0.1)
    assert tx.receive_request(invite, 0.3) == [sent]  # retransmitted INVITE: the final again
    ack = request("ACK", to_tag="314", cseq_method="ACK")
    assert tx.receive_request(ack, 0.4) == [] and tx.state is State.CONFIRMED  # not passed to the TU
    assert tx.get_timer() == pytest.approx(5.4)  # I = T4; G and H cancelled
    assert tx.receive_request(ack, 1.0) == [] and tx.receive_request(invite, 1.0) == []
    assert run(tx, 100.0) == [(pytest.approx(5.4), Terminated())]


def test_ist_reliable_no_g_and_i_zero() -> None:
    invite = request()
    tx = InviteServerTransaction(invite, reliable=True)
    tx.start(0.0)
    tx.send_response(response(invite, 480), 0.1)
    assert tx.get_timer() == pytest.approx(32.1)  # only H
    ack = request("ACK", to_tag="314", cseq_method="ACK")
    assert tx.receive_request(ack, 0.2) == [Terminated()]


def test_ist_2xx_accepted_absorbs_invites_passes_acks() -> None:
    invite = request()
    tx = InviteServerTransaction(invite, reliable=False)
    tx.start(0.0)
    ok = response(invite, 200)
    [sent] = tx.send_response(ok, 0.1)
    assert tx.state is State.ACCEPTED and tx.get_timer() == pytest.approx(32.1)  # Timer L
    assert tx.receive_request(invite, 0.5) == []  # absorbed; the TU retransmits the 2xx itself
    assert tx.send_response(ok, 0.6) == [sent]
    ack = request("ACK", branch="z9hG4bKnewbranch", to_tag="314", cseq_method="ACK")
    assert tx.receive_request(ack, 0.7) == [Deliver(ack)]
    with pytest.raises(TransactionError):
        tx.send_response(response(invite, 500), 0.8)
    assert run(tx, 100.0) == [(pytest.approx(32.1), Terminated())]


def test_ist_transport_error_and_local_errors() -> None:
    invite = request()
    tx = InviteServerTransaction(invite, reliable=False)
    with pytest.raises(TransactionError, match="not started"):
        tx.send_response(response(invite, 180), 0.0)
    tx.start(0.0)
    with pytest.raises(TransactionError, match="already started"):
        tx.start(0.0)
    with pytest.raises(TransactionError):
        tx.send_response(Response("SIP/2.0", 99, "Low"), 0.0)
    tx.send_response(response(invite, 500), 0.1)
    with pytest.raises(TransactionError, match="Completed"):
        tx.send_response(response(invite, 600), 0.2)
    assert tx.transport_error(0.3) == [TransportFailed(), Terminated()]


# --- non-INVITE server (Figure 8) ---------------------------------------------------------


def test_nist_trying_proceeding_completed_timer_j() -> None:
    register = request("REGISTER")
    tx = NonInviteServerTransaction(register, reliable=False)
    assert tx.start(0.0) == [Deliver(register)] and tx.state is State.TRYING
    assert tx.receive_request(register, 0.5) == []  # Trying: retransmissions absorbed
    [prov] = tx.send_response(response(register, 100), 0.6)
    assert tx.state is State.PROCEEDING and tx.receive_request(register, 1.0) == [prov]
    [final] = tx.send_response(response(register, 200), 1.5)
    assert tx.state is State.COMPLETED and tx.get_timer() == pytest.approx(33.5)  # J = 64*T1
    assert tx.receive_request(register, 2.0) == [final]
    with pytest.raises(TransactionError):
        tx.send_response(response(register, 200), 2.1)
    assert run(tx, 100.0) == [(pytest.approx(33.5), Terminated())]


def test_nist_reliable_j_is_zero() -> None:
    bye = request("BYE")
    tx = NonInviteServerTransaction(bye, reliable=True)
    tx.start(0.0)
    assert kinds(tx.send_response(response(bye, 200), 0.1)) == ["Send", "Terminated"]


# --- construction ------------------------------------------------------------------------


def test_factories_and_wrong_methods() -> None:
    assert isinstance(client_transaction(request(), reliable=True), InviteClientTransaction)
    assert isinstance(client_transaction(request("CANCEL"), reliable=True), NonInviteClientTransaction)
    assert isinstance(server_transaction(request(), reliable=True), InviteServerTransaction)
    assert isinstance(server_transaction(request("INFO"), reliable=True), NonInviteServerTransaction)
    for build in (client_transaction, server_transaction):
        with pytest.raises(TransactionError):
            build(request("ACK"), reliable=True)
    with pytest.raises(TransactionError):
        InviteClientTransaction(request("BYE"), reliable=True)
    with pytest.raises(TransactionError):
        NonInviteServerTransaction(request(), reliable=True)


@pytest.mark.parametrize(
    "cls",
    [
        InviteClientTransaction,
        NonInviteClientTransaction,
        InviteServerTransaction,
        NonInviteServerTransaction,
    ],
)
def test_tables_are_data_and_terminated_is_final(cls: type[Transaction]) -> None:
    assert not [key for key in cls.TABLE if key[0] is State.TERMINATED]
    states = {cls.INITIAL} | {nxt for nxt, _ in cls.TABLE.values()}
    assert {src for src, _ in cls.TABLE} <= states
    for state, timers in cls.TIMERS.items():
        for timer in timers:
            assert (state, timer) in cls.TABLE, (state, timer)


@pytest.mark.parametrize(
    ("machine", "method"),
    [
        (InviteClientTransaction, "OPTIONS"),
        (InviteServerTransaction, "BYE"),
        (NonInviteClientTransaction, "INVITE"),
        (NonInviteServerTransaction, "INVITE"),
        (NonInviteClientTransaction, "ACK"),
        (NonInviteServerTransaction, "ACK"),
    ],
)
def test_a_machine_refuses_a_request_of_the_other_kind(machine: type, method: str) -> None:
    with pytest.raises(TransactionError, match=f"{method} cannot start a {machine.__name__}"):
        machine(request(method, cseq_method=method), reliable=False)
