"""Header views (Contact, Route, tokens, Expires, Content-Type, auth) and response building."""

from __future__ import annotations

import pytest

from palaver.sip import (
    Headers,
    MediaType,
    Request,
    Response,
    SipParseError,
    SipURI,
    make_response,
    parse_auth_header,
    parse_contacts,
    parse_content_type,
    parse_expires,
    parse_message,
    parse_name_addr,
    parse_routes,
    parse_token_list,
    parse_via,
    quote_string,
    reason_phrase,
    response_for_error,
)

from .conftest import load, names

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKnashds8;maddr=239.1.1.1;ttl=16\r\n"
    b"Via: SIP/2.0/TCP proxy.example.com:5061;branch=z9hG4bK77\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@example.com>\r\n"
    b"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Timestamp: 54\r\n"
    b"Contact: <sip:alice@pc33.example.com>;expires=60, sip:alice@192.0.2.4;q=0.5\r\n"
    b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"Route: <sip:p3.example.com;lr>\r\n"
    b"Allow: INVITE, ACK, CANCEL,BYE\r\n"
    b"Supported: timer, replaces\r\n"
    b"Require: 100rel\r\n"
    b"Expires: 0300\r\n"
    b"Content-Type: Application/SDP;charset=utf-8\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def req(data: bytes = INVITE) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def test_via_maddr_ttl_sent_by_and_str() -> None:
    vias = [parse_via(v) for v in req().headers.get_all("Via")]
    assert (vias[0].maddr, vias[0].ttl, vias[0].sent_by) == ("239.1.1.1", 16, ("pc33.example.com", None))
    assert vias[1].sent_by == ("proxy.example.com", 5061) and vias[1].maddr is None
    assert str(vias[1]) == "SIP/2.0/TCP proxy.example.com:5061;branch=z9hG4bK77"
    assert parse_via(str(vias[0])) == vias[0]
    with pytest.raises(SipParseError, match="ttl"):
        parse_via("SIP/2.0/UDP h;ttl=256")


def test_contacts_multiple_and_star() -> None:
    contacts = parse_contacts(req().headers)
    assert not isinstance(contacts, str)
    assert [str(c.uri) for c in contacts] == ["sip:alice@pc33.example.com", "sip:alice@192.0.2.4"]
    assert contacts[0].param("expires") == "60" and contacts[1].param("q") == "0.5"
    assert parse_contacts(Headers([("Contact", "*")])) == "*"
    assert parse_contacts(Headers()) == ()
    with pytest.raises(SipParseError, match="only Contact"):
        parse_contacts(Headers([("Contact", "*, <sip:a@b>")]))


def test_routes_over_several_lines() -> None:
    routes = parse_routes(req().headers)
    assert [r.uri.host for r in routes if isinstance(r.uri, SipURI)] == [
        "p1.example.com",
        "p2.example.com",
        "p3.example.com",
    ]
    assert all(isinstance(r.uri, SipURI) and r.uri.has_param("lr") for r in routes)
    assert parse_routes(req().headers, "Record-Route") == ()


def test_token_lists_and_expires() -> None:
    h = req().headers
    assert parse_token_list(h, "Allow") == ("INVITE", "ACK", "CANCEL", "BYE")
    assert parse_token_list(h, "k") == ("timer", "replaces")
    assert parse_token_list(h, "Require") == ("100rel",)
    assert parse_token_list(h, "Unsupported") == ()
    with pytest.raises(SipParseError):
        parse_token_list(Headers([("Allow", "INVITE, <x>")]), "Allow")
    with pytest.raises(SipParseError, match="empty"):
        parse_token_list(Headers([("Allow", "INVITE,,BYE")]), "Allow")
    assert parse_expires(h.get("Expires") or "") == 300
    with pytest.raises(SipParseError):
        parse_expires("4294967296")


def test_content_type() -> None:
    ct = parse_content_type(req().headers.get("c") or "")
    assert ct == MediaType("application", "sdp", (("charset", "utf-8"),))
    assert ct.mime == "application/sdp" and ct.param("CHARSET") == "utf-8"
    assert str(ct) == "application/sdp;charset=utf-8"
    mpart = parse_content_type(req(load("valid", "mpart01")).headers.get("Content-Type") or "")
    assert mpart.mime == "multipart/mixed" and mpart.param("boundary") == "7a9cbec02ceef655"
    invut = parse_content_type(req(load("application", "invut")).headers.get("Content-Type") or "")
    assert invut.mime == "application/unknownformat"
    for bad in ["text", "text/", "/plain", "text/plain;", "a b/c"]:
        with pytest.raises(SipParseError):
            parse_content_type(bad)


def test_auth_headers() -> None:
    challenge = parse_auth_header(
        'Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth,auth-int",'
        ' nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5',
        "WWW-Authenticate",
    )
    assert challenge.is_digest and challenge.param("REALM") == "atlanta.com"
    assert challenge.param("opaque") == "" and challenge.param("stale") == "FALSE"
    assert challenge.qop_options == ("auth", "auth-int") and challenge.param("cnonce") is None
    assert parse_auth_header(str(challenge)) == challenge
    creds = parse_auth_header(
        'Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",'
        ' uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b",'
        ' response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert (creds.param("username"), creds.param("uri"), creds.param("nc")) == (
        "bob",
        "sip:bob@biloxi.com",
        "00000001",
    )
    assert parse_auth_header('Digest realm="a\\"b"').param("realm") == 'a"b'
    assert quote_string('a"b\\') == '"a\\"b\\\\"'
    other = parse_auth_header(req(load("application", "regaut01")).headers.get("Authorization") or "")
    assert (other.scheme, other.param("opaque-data")) == ("NoOneKnowsThisScheme", "here")
    assert not other.is_digest
    for bad in ["", "Digest", "Digest realm", 'Digest realm="x', "Digest a=b c", "Digest =x", "<x> a=b"]:
        with pytest.raises(SipParseError):
            parse_auth_header(bad)


def test_make_response_copies_and_tags() -> None:
    request = req()
    trying = make_response(request, 100)
    assert (trying.status, trying.reason) == (100, "Trying")
    assert trying.headers.lines("Via") == request.headers.lines("Via")
    assert trying.headers.get("To") == "Bob <sip:bob@example.com>"
    assert trying.headers.get("Timestamp") == "54"
    ok = make_response(request, 200, to_tag="xyz")
    assert parse_name_addr(ok.headers.get("To") or "", "To").tag == "xyz"
    assert ok.headers.get("Timestamp") is None and ok.reason == "OK"
    assert [n for n, _ in ok.headers] == ["Via", "Via", "From", "To", "Call-ID", "CSeq"]
    again = parse_message(ok.to_bytes())
    assert isinstance(again, Response) and again.headers.get("CSeq") == "314159 INVITE"
    tagged = request.headers.copy()
    tagged.set("To", "<sip:bob@example.com>;tag=old")
    twice = make_response(Request(request.method, request.uri, "SIP/2.0", tagged), 486, to_tag="new")
    assert parse_name_addr(twice.headers.get("To") or "", "To").tag == "old"
    assert twice.reason == "Busy Here"
    assert make_response(request, 499, "Custom").reason == "Custom"
    with pytest.raises(ValueError):
        make_response(request, 700)
    assert reason_phrase(299) == "Success" and reason_phrase(699) == "Global Failure"


@pytest.mark.parametrize("name", names("invalid"))
def test_response_for_error_on_invalid(name: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(load("invalid", name))
    err = info.value
    resp = response_for_error(err, to_tag="t1")
    if err.is_response:
        assert resp is None  # malformed responses are dropped
        return
    assert resp is not None and resp.status == err.status and resp.reason == err.reason
    assert resp.headers.lines("Via") == list(err.via)
    wire = resp.to_bytes()
    assert wire.startswith(f"SIP/2.0 {err.status} ".encode())


def test_response_for_error_needs_the_headers() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(load("application", "insuf"))
    assert response_for_error(info.value) is None
