"""UA core: OPTIONS, INFO, re-INVITE/UPDATE, REFER + NOTIFY, challenged BYE/REFER, §8.2 answers."""

from __future__ import annotations

import pytest

from palaver.sip import (
    CallEnded,
    InfoReceived,
    Peer,
    ReferStatus,
    ReInvite,
    Request,
    Response,
    UaStateError,
    parse_auth_header,
    parse_cseq,
    parse_via,
)

from .uapeer import (
    SDP_ANSWER,
    SDP_OFFER,
    Harness,
    ack_text,
    in_dialog_text,
    invite_text,
    response_to,
    statuses,
    to_tag,
)


def options_text(extra: str = "", ruri: str = "sip:agent@192.0.2.1") -> str:
    lines = [
        f"OPTIONS {ruri} SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-opt;rport",
        "Max-Forwards: 70",
        "From: <sip:ping@example.com>;tag=p1",
        "To: <sip:agent@example.com>",
        "Call-ID: opt-1",
        "CSeq: 7 OPTIONS",
    ]
    return "\n".join(lines + [x for x in extra.splitlines() if x])


def test_options_out_of_dialog() -> None:
    h = Harness()
    ((resp, _),) = h.send(options_text())
    assert isinstance(resp, Response) and resp.status == 200
    assert to_tag(resp)
    assert resp.headers.get_all("Allow") == [
        "INVITE",
        "ACK",
        "CANCEL",
        "BYE",
        "OPTIONS",
        "INFO",
        "UPDATE",
        "NOTIFY",
    ]
    assert resp.headers.get("Accept") == "application/sdp"
    assert resp.headers.get("CSeq") == "7 OPTIONS"


def test_options_with_max_forwards_zero_is_answered() -> None:
    h = Harness()
    sent = h.send(options_text().replace("Max-Forwards: 70", "Max-Forwards: 0"))
    assert statuses(sent) == [200]  # we are the destination (RFC 4475 zeromf)


def test_options_in_dialog() -> None:
    h = Harness()
    _, tag = h.confirmed()
    sent = h.send(in_dialog_text("OPTIONS", tag))
    assert statuses(sent) == [200] and to_tag(sent[0][0]) == tag


@pytest.mark.parametrize(
    ("method", "status"),
    [("REGISTER", 405), ("SUBSCRIBE", 405), ("MESSAGE", 405), ("REFER", 405), ("FOO", 501)],
)
def test_methods_we_do_not_take(method: str, status: int) -> None:
    h = Harness()
    text = options_text().replace("OPTIONS", method)
    ((resp, _),) = h.send(text)
    assert isinstance(resp, Response) and resp.status == status
    assert "INVITE" in resp.headers.get_all("Allow")


def test_unsupported_require_gets_420() -> None:
    h = Harness()
    ((resp, _),) = h.send(invite_text(extra="Require: 100rel, foo\nProxy-Require: bar"), SDP_OFFER)
    assert isinstance(resp, Response) and resp.status == 420
    assert resp.headers.get_all("Unsupported") == ["100rel", "foo"]
    assert h.events() == []


def test_unknown_uri_scheme_gets_416() -> None:
    h = Harness()
    assert statuses(h.send(options_text(ruri="isbn:2983792873"))) == [416]


def test_body_that_is_not_sdp_gets_415() -> None:
    h = Harness()
    text = invite_text().replace("application/sdp", "application/x-garbage")
    ((resp, _),) = h.send(text, b"<xml/>")
    assert isinstance(resp, Response) and resp.status == 415
    assert resp.headers.get("Accept") == "application/sdp"
    enc = invite_text(extra="Content-Encoding: gzip", branch="z9hG4bK-2", call_id="c2")
    assert statuses(h.send(enc, SDP_OFFER)) == [415]


def test_accept_without_sdp_gets_406() -> None:
    h = Harness()
    assert statuses(h.send(invite_text(extra="Accept: text/nonsense"), SDP_OFFER)) == [406]


def test_invite_without_contact_uses_from_and_star_gets_400() -> None:
    h = Harness()
    call, _ = h.confirmed(invite_text(contact=""))  # RFC 2543 style
    h.ua.bye(call, 0.0)
    ((bye, _),) = h.ua.transmits()
    assert isinstance(bye, Request) and str(bye.uri) == "sip:alice@example.com"
    sent = h.send(invite_text(contact="*", call_id="c2", branch="z9hG4bK-2"), SDP_OFFER)
    assert statuses(sent) == [400]


def test_invite_without_body_is_passed_on() -> None:
    h = Harness()
    h.send(invite_text().replace("Content-Type: application/sdp", ""))
    (event,) = h.events()
    assert event.request.body == b""  # type: ignore[union-attr]


# --- INFO ---------------------------------------------------------------------------------


def test_info_in_dialog() -> None:
    h = Harness()
    call, tag = h.confirmed()
    body = b"Signal=5\r\nDuration=160\r\n"
    sent = h.send(in_dialog_text("INFO", tag, extra="Content-Type: application/dtmf-relay"), body)
    assert statuses(sent) == [200]
    assert h.events() == [InfoReceived(call, "application/dtmf-relay", body)]


def test_info_outside_a_dialog_gets_481() -> None:
    h = Harness()
    assert statuses(h.send(options_text().replace("OPTIONS", "INFO"))) == [481]


# --- re-INVITE and UPDATE -----------------------------------------------------------------


def reinvite(tag: str, cseq: int = 2, branch: str = "z9hG4bK-re") -> str:
    extra = "Contact: <sip:alice@198.51.100.9:5070>\nContent-Type: application/sdp"
    return in_dialog_text("INVITE", tag, cseq=cseq, branch=branch, extra=extra)


def test_reinvite_accepted_and_acked() -> None:
    h = Harness()
    call, tag = h.confirmed()
    assert h.send(reinvite(tag), SDP_OFFER) == []
    assert h.events() == [ReInvite(call, SDP_OFFER)]
    h.ua.accept_reinvite(call, SDP_ANSWER, 0.0)
    ((ok, _),) = h.ua.transmits()
    assert isinstance(ok, Response) and ok.status == 200 and ok.body == SDP_ANSWER
    assert ok.headers.get("CSeq") == "2 INVITE" and to_tag(ok) == tag
    assert ok.headers.get("Contact") == "<sip:192.0.2.1:5060>"
    assert [t for t, _, _ in h.advance(2.0)] == [0.5, 1.5]  # retransmitted until the ACK
    h.send(ack_text(ok))
    assert h.advance(40.0) == []
    assert h.events() == []
    # the Contact of the re-INVITE is the new remote target
    h.ua.bye(call, h.now)
    ((bye, peer),) = h.ua.transmits()
    assert isinstance(bye, Request) and str(bye.uri) == "sip:alice@198.51.100.9:5070"
    assert peer.host == "198.51.100.9"


def test_reinvite_without_ack_ends_the_call() -> None:
    h = Harness()
    call, tag = h.confirmed()
    h.send(reinvite(tag), SDP_OFFER)
    h.events()
    h.ua.accept_reinvite(call, SDP_ANSWER, 0.0)
    h.ua.transmits()
    log = h.advance(32.0)
    assert [m.method for _, m, _ in log if isinstance(m, Request)] == ["BYE"]
    assert h.events() == [CallEnded(call, "ack_timeout", None)]


def test_reinvite_rejected() -> None:
    h = Harness()
    call, tag = h.confirmed()
    h.send(reinvite(tag), SDP_OFFER)
    h.events()
    h.ua.reject_reinvite(call, 488, 0.0)
    ((resp, _),) = h.ua.transmits()
    assert isinstance(resp, Response) and resp.status == 488 and to_tag(resp) == tag
    with pytest.raises(UaStateError):
        h.ua.accept_reinvite(call, SDP_ANSWER, 0.0)
    assert call in h.ua.calls()


def test_second_offer_while_one_is_pending_gets_500_retry_after() -> None:
    h = Harness()
    call, tag = h.confirmed()
    h.send(reinvite(tag), SDP_OFFER)
    sent = h.send(reinvite(tag, cseq=3, branch="z9hG4bK-re2"), SDP_OFFER)
    assert statuses(sent) == [500] and sent[0][0].headers.get("Retry-After") == "1"
    upd = in_dialog_text("UPDATE", tag, cseq=4, branch="z9hG4bK-u", extra="Content-Type: application/sdp")
    assert statuses(h.send(upd, SDP_OFFER)) == [500]
    assert h.events() == [ReInvite(call, SDP_OFFER)]


def test_reinvite_before_the_ack_gets_500() -> None:
    h = Harness()
    _, ok = h.answered()
    assert statuses(h.send(reinvite(to_tag(ok)), SDP_OFFER)) == [500]


def test_reinvite_asking_for_an_offer() -> None:
    h = Harness()
    call, tag = h.confirmed()
    h.send(reinvite(tag).replace("Content-Type: application/sdp", ""))
    assert h.events() == [ReInvite(call, None)]


def test_reinvite_cancelled() -> None:
    h = Harness()
    call, tag = h.confirmed()
    h.send(reinvite(tag), SDP_OFFER)
    h.events()
    cancel = in_dialog_text("CANCEL", tag, cseq=2, branch="z9hG4bK-re")
    assert statuses(h.send(cancel)) == [200, 487]
    assert h.events() == []
    with pytest.raises(UaStateError):
        h.ua.accept_reinvite(call, SDP_ANSWER, 0.0)
    assert call in h.ua.calls()


def test_update_with_and_without_offer() -> None:
    h = Harness()
    call, tag = h.confirmed()
    sent = h.send(in_dialog_text("UPDATE", tag, extra="Contact: <sip:alice@198.51.100.9:5070>"))
    assert statuses(sent) == [200] and sent[0][0].body == b""
    assert h.events() == []
    upd = in_dialog_text("UPDATE", tag, cseq=3, branch="z9hG4bK-u", extra="Content-Type: application/sdp")
    assert h.send(upd, SDP_OFFER) == []
    assert h.events() == [ReInvite(call, SDP_OFFER)]
    h.ua.accept_reinvite(call, SDP_ANSWER, 0.0)
    ((ok, _),) = h.ua.transmits()
    assert isinstance(ok, Response) and ok.headers.get("CSeq") == "3 UPDATE" and ok.body == SDP_ANSWER
    assert h.advance(40.0) == []  # a non-INVITE 2xx is not retransmitted by the core


# --- REFER and NOTIFY ---------------------------------------------------------------------


def notify(tag: str, cseq: int, frag: str, state: str) -> tuple[str, bytes]:
    extra = f"Event: refer\nSubscription-State: {state}\nContent-Type: message/sipfrag;version=2.0"
    return in_dialog_text("NOTIFY", tag, cseq=cseq, branch=f"z9hG4bK-n{cseq}", extra=extra), frag.encode()


def test_refer_and_notify_progress() -> None:
    h = Harness()
    rr = "Record-Route: <sip:p1.example.net;lr>"
    call, tag = h.confirmed(invite_text(extra=rr))
    h.ua.refer(call, "sip:bob@example.com", 0.0)
    ((refer, peer),) = h.ua.transmits()
    assert isinstance(refer, Request) and refer.method == "REFER"
    assert refer.headers.get("Refer-To") == "<sip:bob@example.com>"
    assert refer.headers.get("Referred-By") == "<sip:agent@example.com>"
    assert refer.headers.get("Contact") == "<sip:192.0.2.1:5060>"
    assert refer.headers.get_all("Route") == ["<sip:p1.example.net;lr>"]
    assert peer.host == "p1.example.net"
    with pytest.raises(UaStateError):
        h.ua.refer(call, "sip:carol@example.com", 0.0)
    h.feed(response_to(refer, 202, "Accepted"))
    assert h.events() == [ReferStatus(call, 202, False)]
    sent = h.send(*notify(tag, 2, "SIP/2.0 100 Trying\r\n", "active;expires=60"))
    assert statuses(sent) == [200]
    assert h.events() == [ReferStatus(call, 100, False)]
    sent = h.send(*notify(tag, 3, "SIP/2.0 200 OK\r\n", "terminated;reason=noresource"))
    assert statuses(sent) == [200]
    assert h.events() == [ReferStatus(call, 200, True)]
    # the app hangs up after a successful transfer
    h.ua.bye(call, 0.0)
    assert statuses(h.ua.transmits()) == ["BYE"]


def test_refer_failure_response_is_final() -> None:
    h = Harness()
    call, _ = h.confirmed()
    h.ua.refer(call, "<sip:bob@example.com>", 0.0)
    ((refer, _),) = h.ua.transmits()
    h.feed(response_to(refer, 603, "Decline"))
    assert h.events() == [ReferStatus(call, 603, True)]
    h.ua.refer(call, "sip:carol@example.com", 0.0)  # another try is allowed now
    assert statuses(h.ua.transmits()) == ["REFER"]


def test_refer_timeout_is_408() -> None:
    h = Harness()
    call, _ = h.confirmed()
    h.ua.refer(call, "sip:bob@example.com", 0.0)
    h.ua.transmits()
    h.advance(40.0)
    assert h.events() == [ReferStatus(call, 408, True)]


def test_refer_needs_a_confirmed_call_and_a_good_uri() -> None:
    h = Harness()
    call = h.incoming_call()
    with pytest.raises(UaStateError):
        h.ua.refer(call, "sip:bob@example.com", 0.0)
    call2, _ = h.confirmed(invite_text(call_id="c2", branch="z9hG4bK-2"))
    with pytest.raises(ValueError):
        h.ua.refer(call2, "not a uri", 0.0)


def test_failed_notify_frag_is_final() -> None:
    h = Harness()
    call, tag = h.confirmed()
    h.ua.refer(call, "sip:bob@example.com", 0.0)
    h.ua.transmits()
    h.send(*notify(tag, 2, "SIP/2.0 486 Busy Here\r\n", "active"))
    assert h.events() == [ReferStatus(call, 486, True)]
    # subscription over: a late NOTIFY gets 481
    assert statuses(h.send(*notify(tag, 3, "SIP/2.0 486 Busy Here\r\n", "terminated"))) == [481]


def test_notify_errors() -> None:
    h = Harness()
    call, tag = h.confirmed()
    assert statuses(h.send(*notify(tag, 2, "SIP/2.0 100 Trying", "active"))) == [481]  # no REFER
    h.ua.refer(call, "sip:bob@example.com", 0.0)
    h.ua.transmits()
    text, body = notify(tag, 3, "SIP/2.0 100 Trying", "active")
    assert statuses(h.send(text.replace("Event: refer", "Event: presence"), body)) == [489]
    text, body = notify(tag, 4, "SIP/2.0 100 Trying", "active")
    assert statuses(h.send(text.replace("Event: refer\n", ""), body)) == [400]
    text, body = notify(tag, 5, "garbage", "active")
    assert statuses(h.send(text, body)) == [400]
    assert h.events() == []
    out_of_dialog = options_text(extra="Event: refer").replace("OPTIONS", "NOTIFY")
    assert statuses(h.send(out_of_dialog)) == [481]


# --- our requests challenged by a trunk --------------------------------------------------


def test_challenged_bye_is_retried_once_with_credentials() -> None:
    h = Harness(trunk_credentials=("trunkuser", "trunkpass"))
    call, _ = h.confirmed()
    h.ua.bye(call, 0.0)
    ((bye, _),) = h.ua.transmits()
    challenge = 'WWW-Authenticate: Digest realm="trunk", nonce="abc", qop="auth", algorithm=MD5'
    sent = h.feed(response_to(bye, 401, "Unauthorized", extra=challenge))
    # the 401 is absorbed by the transaction; the retry is a new one
    ((retry, _),) = sent
    assert isinstance(retry, Request) and retry.method == "BYE"
    assert (
        parse_cseq(retry.headers.lines("CSeq")[0]).number
        == parse_cseq(bye.headers.lines("CSeq")[0]).number + 1
    )
    assert (
        parse_via(retry.headers.get_all("Via")[0]).branch != parse_via(bye.headers.get_all("Via")[0]).branch
    )
    creds = parse_auth_header(retry.headers.lines("Authorization")[0])
    assert creds.param("username") == "trunkuser" and creds.param("realm") == "trunk"
    assert creds.param("uri") == str(retry.uri) and creds.param("qop") == "auth"
    assert h.events() == []
    h.feed(response_to(retry, 401, "Unauthorized", extra=challenge))
    assert h.events() == [CallEnded(call, "hangup", 401)]


def test_proxy_challenge_on_refer_uses_proxy_authorization() -> None:
    h = Harness(trunk_credentials=("u", "p"))
    call, _ = h.confirmed()
    h.ua.refer(call, "sip:bob@example.com", 0.0)
    ((refer, _),) = h.ua.transmits()
    challenge = 'Proxy-Authenticate: Digest realm="proxy", nonce="n1"'
    ((retry, _),) = h.feed(response_to(refer, 407, "Proxy Authentication Required", extra=challenge))
    assert "Proxy-Authorization" in retry.headers and retry.headers.get("Refer-To") == "<sip:bob@example.com>"
    h.feed(response_to(retry, 202, "Accepted"))  # type: ignore[arg-type]
    assert h.events() == [ReferStatus(call, 202, False)]


def test_challenge_without_trunk_credentials_is_final() -> None:
    h = Harness()
    call, _ = h.confirmed()
    h.ua.bye(call, 0.0)
    ((bye, _),) = h.ua.transmits()
    h.feed(response_to(bye, 401, "Unauthorized", extra='WWW-Authenticate: Digest realm="t", nonce="n"'))
    assert h.events() == [CallEnded(call, "hangup", 401)]


def test_reinvite_2xx_is_retransmitted_to_where_the_reinvite_came_from() -> None:
    h = Harness()
    call, tag = h.confirmed()
    elsewhere = Peer("udp", "198.51.100.9", 5070)
    h.send(reinvite(tag).replace("192.0.2.10:5070", "198.51.100.9:5070"), SDP_OFFER, peer=elsewhere)
    h.events()
    h.ua.accept_reinvite(call, SDP_ANSWER, 0.0)
    ((_, peer),) = h.ua.transmits()
    assert peer == elsewhere
    assert {p for _, _, p in h.advance(2.0)} == {elsewhere}
