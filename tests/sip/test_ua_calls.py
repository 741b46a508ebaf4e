"""UA core call flows on virtual time: INVITE, 100/180/200, ACK, BYE both ways, CANCEL, ACK timeout."""

from __future__ import annotations

import pytest

from palaver.sip import Peer, Request, Response, parse_cseq, parse_name_addr, parse_via
from palaver.sip.ua import (
    CallCancelled,
    CallConfirmed,
    CallEnded,
    IncomingCall,
    UaStateError,
)

from .uapeer import (
    SDP_ANSWER,
    SDP_OFFER,
    UAC,
    Harness,
    in_dialog_text,
    invite_text,
    response_to,
    statuses,
    to_tag,
)

T1_SCHEDULE = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]


def test_invite_gets_100_from_the_transaction_then_incoming_call() -> None:
    h = Harness()
    assert h.send(invite_text(), SDP_OFFER) == []
    (event,) = h.events()
    assert isinstance(event, IncomingCall) and event.peer == UAC
    assert event.request.body == SDP_OFFER
    # Via stamped with received/rport (RFC 3581) before anyone sees it
    assert parse_via(event.request.headers.get_all("Via")[0]).rport == 5070
    log = h.advance(0.2)
    assert [(t, m.status) for t, m, _ in log if isinstance(m, Response)] == [(0.2, 100)]
    trying = log[0][1]
    assert "tag=" not in trying.headers.lines("To")[0]


def test_ringing_and_accept_carry_tag_contact_record_route_and_sdp() -> None:
    h = Harness()
    rr = (
        "Record-Route: <sip:p2.example.net;lr>, <sip:p1.example.net;lr>\n"
        "Record-Route: <sip:p0.example.net;lr>"
    )
    call = h.incoming_call(invite_text(extra=rr))
    h.ua.ringing(call, 0.0)
    ((ringing, peer),) = h.ua.transmits()
    assert isinstance(ringing, Response) and ringing.status == 180
    assert peer == Peer("udp", "192.0.2.10", 5070)
    tag = to_tag(ringing)
    assert ringing.headers.lines("Record-Route") == [
        "<sip:p2.example.net;lr>, <sip:p1.example.net;lr>",
        "<sip:p0.example.net;lr>",
    ]
    assert ringing.headers.get("Contact") == "<sip:192.0.2.1:5060>"
    h.ua.accept(call, SDP_ANSWER, 0.1)
    ((ok, peer),) = h.ua.transmits()
    assert isinstance(ok, Response) and ok.status == 200 and to_tag(ok) == tag
    assert ok.body == SDP_ANSWER and ok.headers.get("Content-Type") == "application/sdp"
    assert ok.headers.get("Contact") == "<sip:192.0.2.1:5060>"
    assert ok.headers.lines("Record-Route") == ringing.headers.lines("Record-Route")
    assert "BYE" in (ok.headers.get_all("Allow") or [])
    assert ok.headers.get("CSeq") == "1 INVITE"
    via = parse_via(ok.headers.get_all("Via")[0])
    assert via.branch == "z9hG4bK-inv1" and via.received == "192.0.2.10" and via.rport == 5070
    assert ok.headers.get("Server") == "Palaver"


def test_2xx_is_retransmitted_until_the_ack_then_call_confirmed() -> None:
    h = Harness()
    call, ok = h.answered()
    log = h.advance(4.0)
    assert [t for t, _, _ in log] == [0.5, 1.5, 3.5]
    assert all(m == ok for _, m, _ in log)
    h.now = 4.0
    assert h.send(in_dialog_text("ACK", to_tag(ok), cseq=1, branch="z9hG4bK-ack")) == []
    assert h.events() == [CallConfirmed(call)]
    assert h.advance(100.0) == []
    # a retransmitted ACK is harmless
    assert h.send(in_dialog_text("ACK", to_tag(ok), cseq=1, branch="z9hG4bK-ack")) == []
    assert h.events() == []


def test_retransmitted_invite_after_2xx_is_absorbed() -> None:
    h = Harness()
    h.answered()
    assert h.send(invite_text(), SDP_OFFER) == []
    assert h.events() == []


def test_no_ack_means_bye_and_ack_timeout() -> None:
    h = Harness()
    call, ok = h.answered()
    log = h.advance(40.0)
    resends = [t for t, m, _ in log if isinstance(m, Response)]
    assert resends == T1_SCHEDULE
    byes = [(t, m, p) for t, m, p in log if isinstance(m, Request)]
    assert byes[0][0] == 32.0
    _, bye, peer = byes[0]
    assert isinstance(bye, Request) and bye.method == "BYE"
    assert str(bye.uri) == "sip:alice@192.0.2.10:5070" and peer == Peer("udp", "192.0.2.10", 5070)
    assert parse_name_addr(bye.headers.lines("From")[0]).tag == to_tag(ok)
    assert parse_name_addr(bye.headers.lines("To")[0]).tag == "a1"
    assert bye.headers.get("CSeq") == "1 BYE"
    assert bye.headers.get("Call-ID") == "call-1@192.0.2.10"
    assert CallEnded(call, "ack_timeout", None) in h.events()
    with pytest.raises(UaStateError):
        h.ua.bye(call, h.now)


def test_bye_from_peer_ends_the_call() -> None:
    h = Harness()
    call, tag = h.confirmed()
    sent = h.send(in_dialog_text("BYE", tag, cseq=2))
    assert statuses(sent) == [200]
    assert to_tag(sent[0][0]) == tag
    assert h.events() == [CallEnded(call, "bye", None)]
    with pytest.raises(UaStateError):
        h.ua.bye(call, h.now)
    # a retransmission gets the same 200 from the transaction
    assert statuses(h.send(in_dialog_text("BYE", tag, cseq=2))) == [200]
    # a new BYE for the gone dialog: 481
    assert statuses(h.send(in_dialog_text("BYE", tag, cseq=3, branch="z9hG4bK-r3"))) == [481]


def test_our_bye_goes_in_the_dialog_and_its_200_ends_the_call() -> None:
    h = Harness()
    call, _ = h.confirmed()
    h.ua.bye(call, 1.0)
    ((bye, peer),) = h.ua.transmits()
    assert isinstance(bye, Request) and bye.method == "BYE"
    assert peer == Peer("udp", "192.0.2.10", 5070)
    via = parse_via(bye.headers.get_all("Via")[0])
    assert (via.transport, via.host, via.port, via.has_rport) == ("UDP", "192.0.2.1", 5060, True)
    assert via.branch is not None and via.branch.startswith("z9hG4bK")
    assert bye.headers.get("Max-Forwards") == "70"
    assert h.events() == []
    h.ua.bye(call, 1.0)  # idempotent while the BYE is out
    assert h.ua.transmits() == []
    assert h.feed(response_to(bye, 200)) == []
    assert h.events() == [CallEnded(call, "hangup", 200)]


def test_our_bye_unanswered_times_out_as_408() -> None:
    h = Harness()
    call, _ = h.confirmed()
    h.ua.bye(call, 0.0)
    h.ua.transmits()
    log = h.advance(40.0)
    assert [t for t, _, _ in log] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # Timer E
    assert h.events() == [CallEnded(call, "hangup", 408)]


def test_bye_before_ack_waits_for_the_ack() -> None:
    h = Harness()
    call, ok = h.answered()
    h.ua.bye(call, 0.1)
    assert h.ua.transmits() == []
    h.now = 0.2
    sent = h.send(in_dialog_text("ACK", to_tag(ok), cseq=1, branch="z9hG4bK-ack"))
    assert statuses(sent) == ["BYE"]
    assert h.events() == [CallConfirmed(call)]
    h.feed(response_to(sent[0][0], 200))  # type: ignore[arg-type]
    assert h.events() == [CallEnded(call, "hangup", 200)]


def test_bye_before_ack_without_ack_is_sent_at_the_timeout() -> None:
    h = Harness()
    call, _ = h.answered()
    h.ua.bye(call, 0.0)
    log = h.advance(32.0)
    assert [m.method for _, m, _ in log if isinstance(m, Request)] == ["BYE"]
    bye = next(m for _, m, _ in log if isinstance(m, Request))
    h.feed(response_to(bye, 200))
    assert h.events() == [CallEnded(call, "hangup", 200)]


def test_bye_on_unanswered_call_is_refused() -> None:
    h = Harness()
    call = h.incoming_call()
    with pytest.raises(UaStateError, match="reject"):
        h.ua.bye(call, 0.0)
    with pytest.raises(UaStateError):
        h.ua.bye("nonsense", 0.0)


def test_reject_sends_final_and_the_ack_is_absorbed() -> None:
    h = Harness()
    call = h.incoming_call()
    h.ua.reject(call, 486, 0.0)
    ((busy, _),) = h.ua.transmits()
    assert isinstance(busy, Response) and busy.status == 486
    tag = to_tag(busy)
    assert h.events() == [CallEnded(call, "rejected", 486)]
    # the ACK of a non-2xx has the INVITE's branch: the transaction takes it
    assert h.send(in_dialog_text("ACK", tag, cseq=1, branch="z9hG4bK-inv1")) == []
    assert h.events() == []
    with pytest.raises(UaStateError):
        h.ua.accept(call, SDP_ANSWER, 0.0)
    with pytest.raises(ValueError):
        h.ua.reject(h.incoming_call(invite_text(call_id="other", branch="z9hG4bK-2")), 200, 0.0)


def test_non_2xx_is_retransmitted_by_the_transaction_without_ack() -> None:
    h = Harness()
    call = h.incoming_call()
    h.ua.reject(call, 603, 0.0)
    h.ua.transmits()
    log = h.advance(40.0)
    assert [t for t, _, _ in log] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]


def cancel_text(branch: str = "z9hG4bK-inv1", call_id: str = "call-1@192.0.2.10") -> str:
    return "\n".join(
        [
            "CANCEL sip:agent@192.0.2.1:5060 SIP/2.0",
            f"Via: SIP/2.0/UDP 192.0.2.10:5070;branch={branch};rport",
            "Max-Forwards: 70",
            'From: "Alice" <sip:alice@example.com>;tag=a1',
            "To: <sip:agent@example.com>",
            f"Call-ID: {call_id}",
            "CSeq: 1 CANCEL",
        ]
    )


def test_cancel_of_pending_invite() -> None:
    h = Harness()
    call = h.incoming_call()
    h.ua.ringing(call, 0.0)
    tag = to_tag(h.ua.transmits()[0][0])
    sent = h.send(cancel_text())
    assert statuses(sent) == [200, 487]
    assert sent[0][0].headers.get("CSeq") == "1 CANCEL" and to_tag(sent[0][0]) == tag
    assert sent[1][0].headers.get("CSeq") == "1 INVITE" and to_tag(sent[1][0]) == tag
    assert h.events() == [CallCancelled(call)]
    assert h.send(in_dialog_text("ACK", tag, cseq=1, branch="z9hG4bK-inv1")) == []
    with pytest.raises(UaStateError):
        h.ua.accept(call, SDP_ANSWER, 0.0)
    # the CANCEL retransmitted: same 200 from its transaction
    assert statuses(h.send(cancel_text())) == [200]


def test_cancel_after_the_2xx_has_no_effect() -> None:
    h = Harness()
    call, ok = h.answered()
    assert statuses(h.send(cancel_text())) == [200]
    assert h.events() == []
    h.send(in_dialog_text("ACK", to_tag(ok), cseq=1, branch="z9hG4bK-ack"))
    assert h.events() == [CallConfirmed(call)]


def test_cancel_matching_nothing_gets_481() -> None:
    h = Harness()
    assert statuses(h.send(cancel_text(branch="z9hG4bK-nope"))) == [481]


def test_bye_on_early_dialog_terminates_the_invite() -> None:
    h = Harness()
    call = h.incoming_call()
    h.ua.ringing(call, 0.0)
    tag = to_tag(h.ua.transmits()[0][0])
    assert statuses(h.send(in_dialog_text("BYE", tag))) == [200, 487]
    assert h.events() == [CallEnded(call, "bye", None)]


def test_out_of_order_cseq_gets_500() -> None:
    h = Harness()
    _, tag = h.confirmed(invite_text(cseq=10))
    sent = h.send(in_dialog_text("INFO", tag, cseq=5))
    assert statuses(sent) == [500]


def test_request_for_unknown_dialog_gets_481() -> None:
    h = Harness()
    assert statuses(h.send(in_dialog_text("BYE", "nosuchtag"))) == [481]
    reinvite = in_dialog_text(
        "INVITE", "nosuchtag", branch="z9hG4bK-x", extra="Content-Type: application/sdp"
    )
    assert statuses(h.send(reinvite, SDP_OFFER)) == [481]
    assert h.send(in_dialog_text("ACK", "nosuchtag", branch="z9hG4bK-y")) == []


def test_out_of_dialog_bye_and_info_get_481_with_a_tag() -> None:
    h = Harness()
    text = in_dialog_text("BYE", "x").replace(";tag=x", "")
    sent = h.send(text)
    assert statuses(sent) == [481] and to_tag(sent[0][0])


def test_merged_invite_gets_482() -> None:
    h = Harness()
    h.incoming_call()
    sent = h.send(invite_text(branch="z9hG4bK-forked", via_host="192.0.2.99:5060"), SDP_OFFER)
    assert statuses(sent) == [482]
    assert h.events() == []


def test_two_calls_are_independent() -> None:
    h = Harness()
    a, tag_a = h.confirmed()
    b, tag_b = h.confirmed(invite_text(call_id="call-2@192.0.2.10", branch="z9hG4bK-inv2"))
    assert a != b and tag_a != tag_b
    assert sorted(h.ua.calls()) == sorted([a, b])
    h.send(in_dialog_text("BYE", tag_b, call_id="call-2@192.0.2.10"))
    assert h.events() == [CallEnded(b, "bye", None)]
    assert h.ua.calls() == [a]


def test_responses_follow_via_without_rport_to_the_sent_by_port() -> None:
    h = Harness()
    text = invite_text().replace(";rport", "")
    h.send(text, SDP_OFFER, peer=Peer("udp", "192.0.2.10", 40000))
    (event,) = h.events()
    h.ua.ringing(event.call, 0.0)
    ((resp, peer),) = h.ua.transmits()
    assert peer == Peer("udp", "192.0.2.10", 5070)
    assert parse_via(resp.headers.get_all("Via")[0]).received is None  # sent-by host was the source


def test_responses_with_rport_go_to_the_source_port_and_say_so() -> None:
    h = Harness()
    h.send(invite_text(via_host="10.0.0.5:5070"), SDP_OFFER, peer=Peer("udp", "203.0.113.7", 40000))
    (event,) = h.events()
    h.ua.ringing(event.call, 0.0)
    ((resp, peer),) = h.ua.transmits()
    assert peer == Peer("udp", "203.0.113.7", 40000)
    via = parse_via(resp.headers.get_all("Via")[0])
    assert via.received == "203.0.113.7" and via.rport == 40000


def test_tcp_call_uses_its_connection_and_no_2xx_retransmissions() -> None:
    h = Harness()
    conn = Peer("tcp", "192.0.2.10", 33333, connection=7)
    text = invite_text(transport="TCP", contact="<sip:alice@192.0.2.10:5070;transport=tcp>")
    call, ok = h.answered(text, conn)
    assert ok.headers.get("Contact") == "<sip:192.0.2.1:5060;transport=tcp>"
    assert h.advance(31.0) == []  # reliable: no retransmission of the 2xx
    h.send(in_dialog_text("ACK", to_tag(ok), cseq=1, transport="TCP", branch="z9hG4bK-a"), peer=conn)
    assert h.events() == [CallConfirmed(call)]
    h.ua.bye(call, h.now)
    ((bye, peer),) = h.ua.transmits()
    # next hop = Contact 192.0.2.10:5070 = the Via sent-by of the INVITE: reuse connection 7
    assert peer == Peer("tcp", "192.0.2.10", 5070, connection=7)
    assert parse_via(bye.headers.get_all("Via")[0]).transport == "TCP"


def test_tcp_responses_go_back_on_the_connection() -> None:
    h = Harness()
    conn = Peer("tcp", "192.0.2.10", 33333, connection=9)
    h.send(invite_text(transport="TCP"), SDP_OFFER, conn)
    (event,) = h.events()
    h.ua.ringing(event.call, 0.0)
    ((_, peer),) = h.ua.transmits()
    assert peer == Peer("tcp", "192.0.2.10", 5070, connection=9)


def test_tls_with_sips_contact() -> None:
    h = Harness()
    conn = Peer("tls", "192.0.2.10", 33333, connection=3)
    text = invite_text(
        transport="TLS", ruri="sips:agent@192.0.2.1:5061", contact="<sips:alice@192.0.2.10:5071>"
    )
    _, ok = h.answered(text, conn)
    assert ok.headers.get("Contact") == "<sips:192.0.2.1:5061>"
    contact = "<sip:alice@192.0.2.10:5071;transport=tls>"
    text = invite_text(transport="TLS", contact=contact, call_id="c2", branch="z9hG4bK-2")
    _, ok = h.answered(text, conn)
    assert ok.headers.get("Contact") == "<sip:192.0.2.1:5061;transport=tls>"


def test_transport_error_before_answer_ends_the_call() -> None:
    h = Harness()
    conn = Peer("tcp", "192.0.2.10", 33333, connection=4)
    call = h.incoming_call(invite_text(transport="TCP"), conn)
    h.ua.transport_error(conn, 1.0)
    assert h.events() == [CallEnded(call, "transport_error", None)]


def test_transport_error_fails_our_bye() -> None:
    h = Harness()
    conn = Peer("tcp", "192.0.2.10", 33333, connection=4)
    call, _ = h.confirmed(invite_text(transport="TCP"), conn)
    h.ua.bye(call, 1.0)
    ((_, peer),) = h.ua.transmits()
    h.ua.transport_error(peer, 1.5)
    assert h.events() == [CallEnded(call, "hangup", 503)]


def test_loose_route_set_in_bye() -> None:
    h = Harness()
    rr = "Record-Route: <sip:p2.example.net:5080;lr>, <sip:p1.example.net;lr>"
    call, _ = h.confirmed(invite_text(extra=rr))
    h.ua.bye(call, 0.0)
    ((bye, peer),) = h.ua.transmits()
    assert isinstance(bye, Request)
    assert str(bye.uri) == "sip:alice@192.0.2.10:5070"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.net:5080;lr>", "<sip:p1.example.net;lr>"]
    assert peer == Peer("udp", "p2.example.net", 5080)


def test_strict_route_set_in_bye() -> None:
    h = Harness()
    rr = "Record-Route: <sip:p2.example.net>, <sip:p1.example.net;lr>"
    call, _ = h.confirmed(invite_text(extra=rr))
    h.ua.bye(call, 0.0)
    ((bye, peer),) = h.ua.transmits()
    assert isinstance(bye, Request)
    assert str(bye.uri) == "sip:p2.example.net"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.net;lr>", "<sip:alice@192.0.2.10:5070>"]
    assert peer == Peer("udp", "p2.example.net", 5060)


def test_cseq_of_our_requests_increases() -> None:
    h = Harness()
    call, _ = h.confirmed()
    h.ua.refer(call, "sip:bob@example.com", 0.0)
    ((refer, _),) = h.ua.transmits()
    h.ua.bye(call, 0.0)
    ((bye, _),) = h.ua.transmits()
    assert parse_cseq(refer.headers.lines("CSeq")[0]).number == 1
    assert parse_cseq(bye.headers.lines("CSeq")[0]).number == 2
