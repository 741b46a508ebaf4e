"""Dialogs (RFC 3261 §12) made from an INVITE we received: state, in-dialog requests, next hop."""

from __future__ import annotations

from typing import Any

from palaver.sip import Dialog, Peer, Request, dialog_id_of, parse_uri

from .uapeer import UAC, in_dialog_text, invite_text, sip

VIA = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKours;rport"


def invite(extra: str = "", **kw: Any) -> Request:
    msg = sip(invite_text(extra=extra, **kw))
    assert isinstance(msg, Request)
    return msg


def test_uas_dialog_state_from_invite() -> None:
    rr = "Record-Route: <sip:p2.example.net;lr>\nRecord-Route: <sip:p1.example.net;lr>"
    d = Dialog.from_invite(invite(rr, cseq=42), "ourtag", UAC)
    assert d.id == ("call-1@192.0.2.10", "ourtag", "a1")
    assert str(d.remote_target) == "sip:alice@192.0.2.10:5070"
    assert [str(r.uri) for r in d.route_set] == ["sip:p2.example.net;lr", "sip:p1.example.net;lr"]
    assert d.remote_seq == 42 and d.local_seq is None
    assert str(d.local_uri.uri) == "sip:agent@example.com" and d.local_uri.tag is None
    assert d.remote_uri.display_name == "Alice" and d.remote_uri.tag is None
    assert not d.secure


def test_remote_cseq_ordering() -> None:
    d = Dialog.from_invite(invite(), "t", UAC)
    assert d.accept_remote_cseq(2) and d.remote_seq == 2
    assert d.accept_remote_cseq(2)  # equal is not lower
    assert not d.accept_remote_cseq(1) and d.remote_seq == 2


def test_in_dialog_request_loose_routing() -> None:
    d = Dialog.from_invite(invite("Record-Route: <sip:p1.example.net;lr>"), "ourtag", UAC)
    bye = d.request("BYE", VIA)
    assert bye.method == "BYE" and str(bye.uri) == "sip:alice@192.0.2.10:5070"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.net;lr>"]
    assert bye.headers.get("From") == "<sip:agent@example.com>;tag=ourtag"
    assert bye.headers.get("To") == '"Alice" <sip:alice@example.com>;tag=a1'
    assert bye.headers.get("CSeq") == "1 BYE" and d.request("INFO", VIA).headers.get("CSeq") == "2 INFO"
    assert bye.headers.get("Call-ID") == "call-1@192.0.2.10"
    assert str(d.next_hop()) == "sip:p1.example.net;lr"
    assert d.destination() == Peer("udp", "p1.example.net", 5060)


def test_in_dialog_request_strict_router() -> None:
    rr = "Record-Route: <sip:p2.example.net;method=INVITE>, <sip:p1.example.net;lr>"
    d = Dialog.from_invite(invite(rr), "ourtag", UAC)
    bye = d.request("BYE", VIA)
    assert str(bye.uri) == "sip:p2.example.net"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.net;lr>", "<sip:alice@192.0.2.10:5070>"]
    assert d.destination() == Peer("udp", "p2.example.net", 5060)


def test_no_route_set_goes_to_the_remote_target_and_refresh_moves_it() -> None:
    d = Dialog.from_invite(invite(), "t", UAC)
    assert d.destination() == Peer("udp", "192.0.2.10", 5070)
    update = sip(in_dialog_text("UPDATE", "t", extra="Contact: <sip:alice@198.51.100.4:5999>"))
    assert isinstance(update, Request)
    d.refresh_target(update)
    assert d.destination() == Peer("udp", "198.51.100.4", 5999)
    no_contact = sip(in_dialog_text("UPDATE", "t"))
    assert isinstance(no_contact, Request)
    d.refresh_target(no_contact)
    assert str(d.remote_target) == "sip:alice@198.51.100.4:5999"


def test_destination_transport_port_and_reuse() -> None:
    tcp = Peer("tcp", "192.0.2.10", 40000, connection=5)
    d = Dialog.from_invite(
        invite(transport="TCP", contact="<sip:alice@192.0.2.10:5070;transport=tcp>"), "t", tcp
    )
    # the Via sent-by (192.0.2.10:5070) is the next hop: same connection
    assert d.destination() == Peer("tcp", "192.0.2.10", 5070, connection=5)
    d.remote_target = parse_uri("sip:alice@192.0.2.10:40000;transport=tcp")  # the source address
    assert d.destination() == Peer("tcp", "192.0.2.10", 40000, connection=5)
    d.remote_target = parse_uri("sip:alice@192.0.2.10:6000;transport=tcp")  # somewhere else
    assert d.destination() == Peer("tcp", "192.0.2.10", 6000)
    d.remote_target = parse_uri("sip:alice@192.0.2.10;transport=udp")
    assert d.destination() == Peer("udp", "192.0.2.10", 5060)
    d.remote_target = parse_uri("sips:alice@example.com")
    assert d.destination() == Peer("tls", "example.com", 5061)
    d.remote_target = parse_uri("sip:alice@example.com;maddr=[2001:db8::1]")
    assert d.destination() == Peer("tcp", "2001:db8::1", 5060)
    d.remote_target = parse_uri("tel:+15551234")
    assert d.destination() is None


def test_secure_dialog_from_sips() -> None:
    tls = Peer("tls", "192.0.2.10", 40000, connection=1)
    d = Dialog.from_invite(invite(ruri="sips:agent@192.0.2.1", transport="TLS"), "t", tls)
    assert d.secure


def test_dialog_id_of_requests() -> None:
    bye = sip(in_dialog_text("BYE", "ourtag"))
    assert isinstance(bye, Request)
    assert dialog_id_of(bye) == ("call-1@192.0.2.10", "ourtag", "a1")
    assert dialog_id_of(invite()) is None
