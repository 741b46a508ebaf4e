"""URI, Headers, header views and the stream framer, one behaviour per test."""

from __future__ import annotations

import pytest

import palaver.sip as sip
from palaver.sip import (
    AbsoluteURI,
    Headers,
    Request,
    Response,
    SipParseError,
    SipURI,
    StreamFramer,
    TelURI,
    format_name_addr,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
)

OPTIONS = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK1;rport=5070;received=192.0.2.9\r\n"
    b"From: Alice <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: c1@example.com\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"abcd"
)


def test_public_api_pinned() -> None:
    assert sorted(sip.__all__) == sorted(
        [
            "Dialog",
            "DialogId",
            "dialog_id_of",
            "DigestError",
            "DigestServer",
            "Verdict",
            "Verification",
            "authorization",
            "choose_challenge",
            "digest_response",
            "Peer",
            "TransportName",
            "CallCancelled",
            "CallConfirmed",
            "CallEnded",
            "IncomingCall",
            "InfoReceived",
            "ReferStatus",
            "ReInvite",
            "UaConfig",
            "UaEvent",
            "UaStateError",
            "UserAgent",
            "InboundPolicy",
            "Network",
            "COMPACT_FORMS",
            "DEFAULT_TIMERS",
            "MAGIC_COOKIE",
            "REASON_PHRASES",
            "URI",
            "AbsoluteURI",
            "Action",
            "AuthHeader",
            "CSeq",
            "ClientTransaction",
            "Deliver",
            "Headers",
            "InviteClientTransaction",
            "InviteServerTransaction",
            "MediaType",
            "Message",
            "NameAddr",
            "NonInviteClientTransaction",
            "NonInviteServerTransaction",
            "Request",
            "Response",
            "Send",
            "ServerTransaction",
            "SipError",
            "SipParseError",
            "SipURI",
            "State",
            "StreamFramer",
            "TelURI",
            "Terminated",
            "Timeout",
            "Timer",
            "TimerConfig",
            "Transaction",
            "TransactionError",
            "TransactionTable",
            "TransportFailed",
            "Via",
            "canonical_name",
            "client_key",
            "client_transaction",
            "format_name_addr",
            "is_rfc3261_branch",
            "make_ack",
            "make_response",
            "parse_auth_header",
            "parse_call_id",
            "parse_contacts",
            "parse_content_length",
            "parse_content_type",
            "parse_cseq",
            "parse_expires",
            "parse_max_forwards",
            "parse_message",
            "parse_name_addr",
            "parse_routes",
            "parse_token_list",
            "parse_uri",
            "parse_via",
            "quote_string",
            "reason_phrase",
            "response_for_error",
            "server_key",
            "server_transaction",
        ]
    )
    for name in sip.__all__:
        assert hasattr(sip, name), name


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@example.com",
        "sips:alice:secret@example.com:5061;transport=tcp;lr?subject=hi&priority=urgent",
        "sip:[2001:db8::1]:5060;maddr=[2001:db8::2]",
        "sip:192.0.2.1",
        "sip:%40%00x@host.example",
        "tel:+1-201-555-0123;phone-context=example.com",
        "urn:service:sos",
    ],
)
def test_uri_round_trip(text: str) -> None:
    uri = parse_uri(text)
    assert parse_uri(str(uri)) == uri


def test_sip_uri_fields() -> None:
    uri = parse_uri("sips:al%69ce:pw@Example.COM:5061;transport=TLS;lr?h%3d=v%20w")
    assert uri == SipURI(
        "sips", "Example.COM", "alice", "pw", 5061, (("transport", "TLS"), ("lr", None)), (("h=", "v w"),)
    )
    assert uri.param("TRANSPORT") == "TLS" and uri.param("lr") == "" and uri.param("x") is None
    assert str(uri) == "sips:alice:pw@Example.COM:5061;transport=TLS;lr?h%3D=v%20w"
    assert parse_uri("sip:[::1]:5060").host == "[::1]"  # type: ignore[union-attr]
    assert isinstance(parse_uri("tel:+15551234"), TelURI)
    assert parse_uri("mailto:x@y") == AbsoluteURI("mailto", "x@y")


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@host",
        "sip:user@",
        "sip:host:99999",
        "sip:host:port",
        "sip:ho_st",
        "sip:[zz]",
        "sip:a b@host",
        "sip:a%2@host",
        "sip:host;;",
        "sip:host?noequals",
        "<sip:host>",
        "tel:",
        "x:",
        "1sip:host",
    ],
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400


def test_headers_case_compact_and_lists() -> None:
    h = Headers([("v", "SIP/2.0/UDP a, SIP/2.0/UDP b"), ("VIA", "SIP/2.0/TCP c"), ("x-Foo", "1, 2")])
    assert [n for n, _ in h] == ["Via", "Via", "x-Foo"]
    assert h.get_all("via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b", "SIP/2.0/TCP c"]
    assert h.get("V") == "SIP/2.0/UDP a"
    assert h.get_all("X-FOO") == ["1, 2"]  # unknown headers stay opaque
    assert h.get("missing") is None and "missing" not in h and "x-foo" in h
    c = Headers([("m", '"a, b" <sip:x@y;p=1,2>, <sip:z@w>')])
    assert c.get_all("Contact") == ['"a, b" <sip:x@y;p=1,2>', "<sip:z@w>"]
    for short, long in [("i", "Call-ID"), ("l", "Content-Length"), ("k", "Supported"), ("t", "To")]:
        assert Headers([(short, "x")]).lines(long) == ["x"]


def test_headers_set_remove_eq() -> None:
    h = Headers([("X-A", "1"), ("x-b", "2"), ("x-a", "3")])
    h.set("x-a", "9")
    assert list(h) == [("x-a", "9"), ("x-b", "2")]
    h.remove("X-B")
    assert h == Headers([("X-A", "9")])
    assert list(Headers([("a", "1"), ("b", "2")])) == [("Accept-Contact", "1"), ("Referred-By", "2")]
    assert len(h) == 1


def test_request_to_bytes_sets_content_length() -> None:
    msg = Request("MESSAGE", parse_uri("sip:b@example.com"), "SIP/2.0", Headers([("l", "99")]), b"hi")
    assert msg.to_bytes() == b"MESSAGE sip:b@example.com SIP/2.0\r\nContent-Length: 2\r\n\r\nhi"
    resp = Response("SIP/2.0", 180, "Ringing", Headers([("Call-ID", "x")]))
    assert resp.to_bytes() == b"SIP/2.0 180 Ringing\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(ValueError):
        Response("SIP/2.0", 200, "OK", Headers([("X", "a\r\nInjected: 1")])).to_bytes()


def test_via_view() -> None:
    msg = parse_message(OPTIONS)
    via = parse_via(msg.headers.get("Via") or "")
    assert (via.protocol, via.version, via.transport) == ("SIP", "2.0", "UDP")
    assert (via.host, via.port, via.branch, via.received, via.rport) == (
        "[2001:db8::1]",
        5070,
        "z9hG4bK1",
        "192.0.2.9",
        5070,
    )
    for bad in [
        "SIP/2.0 host",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host;;x",
        "SIP/2.0/UDP a b",
    ]:
        with pytest.raises(SipParseError):
            parse_via(bad)


def test_name_addr_views() -> None:
    na = parse_name_addr('"A \\"B\\" C" <sip:a@b>;tag=x;foo', "From")
    assert (na.display_name, na.tag, na.param("foo")) == ('A "B" C', "x", "")
    assert format_name_addr(na) == '"A \\"B\\" C" <sip:a@b>;tag=x;foo'
    assert parse_name_addr(format_name_addr(na)) == na
    plain = parse_name_addr("sip:a@b;tag=1", "To")
    assert plain.display_name is None and plain.tag == "1" and plain.uri == parse_uri("sip:a@b")
    assert parse_name_addr("<sip:a@b;lr>", "Route").uri == parse_uri("sip:a@b;lr")


def test_datagram_framing_rules() -> None:
    msg = parse_message(OPTIONS + b"trailing junk")
    assert msg.body == b"abcd"
    with pytest.raises(SipParseError, match="Content-Length larger"):
        parse_message(OPTIONS[:-1])
    no_cl = OPTIONS.replace(b"Content-Length: 4\r\n", b"")
    assert parse_message(no_cl + b"xyz").body == b"abcdxyz"
    assert parse_message(b"\r\n\r\n" + OPTIONS).body == b"abcd"  # leading CRLFs are ignored
    with pytest.raises(SipParseError, match="Content-Length"):
        parse_message(OPTIONS.replace(b"Content-Length: 4", b"Content-Length: 1" + b"0" * 12))
    with pytest.raises(SipParseError) as info:
        parse_message(OPTIONS.replace(b"OPTIONS sip:bob@example.com", b"OPTIONS sip:" + b"a" * 5000))
    assert info.value.status == 414


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n",
        b"garbage",
        b"garbage\r\n\r\n",
        b"\xff\xfe\r\n\r\n",
        b"SIP/2.0 200\r\n\r\n",
        b"SIP/2.0 099 Low\r\n\r\n",
        b"SIP/2.0 700 High\r\n\r\n",
        b"A B C\r\n\r\n",
    ],
)
def test_garbage_is_parse_error(data: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert 400 <= info.value.status < 600


def test_malformed_response_is_flagged_for_dropping() -> None:
    bad = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nCSeq: x\r\n\r\n"
    with pytest.raises(SipParseError) as info:
        parse_message(bad)
    assert info.value.is_response and not info.value.can_answer


def test_framer_keepalives_and_split_points() -> None:
    framer = StreamFramer()
    stream = b"\r\n\r\n" + OPTIONS + b"\r\n" + OPTIONS
    got: list[object] = []
    for i in range(len(stream)):
        got += framer.feed(stream[i : i + 1])
    assert got == [parse_message(OPTIONS)] * 2
    assert framer.keepalives == 3 and framer.buffered == 0


def test_framer_requires_content_length_and_breaks() -> None:
    framer = StreamFramer()
    no_cl = OPTIONS.replace(b"Content-Length: 4\r\n", b"")
    out = framer.feed(no_cl + OPTIONS)
    assert len(out) == 1 and isinstance(out[0], SipParseError)
    assert "Content-Length" in out[0].reason and out[0].can_answer
    assert framer.broken and framer.feed(OPTIONS) == [] and framer.buffered == 0


def test_framer_negative_and_oversized_content_length() -> None:
    for value, status in [(b"-1", 400), (b"999999999", 413)]:
        framer = StreamFramer(max_body_bytes=1000)
        out = framer.feed(OPTIONS.replace(b"Content-Length: 4", b"Content-Length: " + value))
        assert [getattr(e, "status", None) for e in out] == [status]
        assert framer.broken


def test_framer_bounded_header_buffer() -> None:
    framer = StreamFramer(max_header_bytes=1024)
    out: list[object] = []
    for _ in range(100):
        out += framer.feed(b"X" * 100)
        assert framer.buffered <= 1124
    assert len(out) == 1 and isinstance(out[0], SipParseError) and framer.broken


def test_framer_keeps_going_after_a_bad_but_framed_message() -> None:
    bad = OPTIONS.replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
    framer = StreamFramer()
    out = framer.feed(bad + OPTIONS)
    assert isinstance(out[0], SipParseError) and out[0].status == 400
    assert out[1] == parse_message(OPTIONS)
    assert not framer.broken


def test_framer_waits_for_body() -> None:
    framer = StreamFramer()
    assert framer.feed(OPTIONS[:-2]) == []
    assert framer.feed(OPTIONS[-2:]) == [parse_message(OPTIONS)]


def test_framer_byte_at_a_time_large_header_is_linear() -> None:
    pad = b"X-Pad: " + b"a" * 60000 + b"\r\n"
    msg = OPTIONS.replace(b"CSeq: 1 OPTIONS\r\n", b"CSeq: 1 OPTIONS\r\n" + pad)
    framer = StreamFramer()
    out: list[object] = []
    for i in range(len(msg)):
        out += framer.feed(msg[i : i + 1])
    assert out == [parse_message(msg)]
