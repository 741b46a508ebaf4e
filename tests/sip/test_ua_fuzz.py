"""Property: random but parseable traffic never makes the UA core raise or fail internally.

Each example builds a UA with a confirmed call, then plays a random script of
requests (random methods, tags, CSeqs, headers and bodies), responses to what
the UA sent, timer jumps and application commands.  ``receive`` must never
raise; an internal failure would show as a 500 "Internal error", which must
never be sent.  Commands may only raise UaStateError or ValueError.
"""

from __future__ import annotations

import ipaddress
import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palaver.sip import Peer, Request, Response, SipParseError, UaStateError, parse_message

from .uapeer import SDP_ANSWER, SDP_OFFER, Harness, invite_text

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

METHODS = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "INFO",
    "UPDATE",
    "NOTIFY",
    "REFER",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "FOO",
]
TOKENS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~", min_size=1, max_size=12)
PEERS = [
    Peer("udp", "192.0.2.10", 5070),
    Peer("udp", "203.0.113.9", 40000),
    Peer("tcp", "192.0.2.10", 33333, connection=1),
    Peer("tls", "2001:db8::5", 40001, connection=2),
]
OPTIONAL_HEADERS = st.sampled_from(
    [
        "Require: 100rel",
        "Require: ",
        "Supported: timer, replaces",
        "Content-Type: application/sdp",
        "Content-Type: message/sipfrag;version=2.0",
        "Content-Type: application/dtmf-relay",
        "Content-Type: multipart/mixed;boundary=x",
        "Content-Encoding: gzip",
        "Accept: application/sdp, text/plain",
        "Accept: text/plain",
        "Max-Forwards: 0",
        "Contact: <sip:alice@192.0.2.10:5070>",
        "Contact: *",
        "Contact: <tel:+1555>",
        "Contact: <sips:alice@[2001:db8::5]:5071>",
        "Record-Route: <sip:p1.example.net;lr>, <sip:p2.example.net>",
        "Record-Route: <sip:[2001:db8::9];lr;transport=tcp>",
        "Event: refer",
        "Event: refer;id=3",
        "Event: presence",
        "Subscription-State: terminated;reason=noresource",
        "Subscription-State: active",
        'Authorization: Digest username="alice", realm="palaver", nonce="x", uri="sip:a@b", response="0"',
        "Authorization: Digest garbage=1",
        'Authorization: Basic realm="x"',
        'WWW-Authenticate: Digest realm="t", nonce="n", qop="auth"',
        'Proxy-Authenticate: Digest realm="t", nonce="n", algorithm=SHA-256',
        'WWW-Authenticate: Digest realm="t", nonce="n", algorithm=BOGUS',
        "Refer-To: <sip:bob@example.com>",
        "Retry-After: 5",
    ]
)
BODIES = st.one_of(
    st.just(b""),
    st.just(SDP_OFFER),
    st.just(b"SIP/2.0 200 OK\r\n"),
    st.just(b"SIP/2.0 1000 Nope\r\n"),
    st.binary(max_size=40),
)


@st.composite
def request_text(draw: st.DrawFn, tag: str) -> tuple[str, bytes]:
    method = draw(st.one_of(st.sampled_from(METHODS), TOKENS.map(str.upper)))
    to_tag = draw(st.sampled_from([None, tag, "zzz"]))
    from_tag = draw(st.sampled_from(["a1", None, "other"]))
    call_id = draw(st.sampled_from(["call-1@192.0.2.10", "call-9", "x@y"]))
    cseq = draw(st.integers(0, 2**32 - 1) | st.integers(0, 5))
    branch = draw(st.sampled_from(["z9hG4bK-inv1", "z9hG4bK-a", "z9hG4bK", None, "old"]))
    rport = draw(st.sampled_from(["", ";rport", ";rport=1234", ";received=10.0.0.1", ";maddr=192.0.2.77"]))
    ruri = draw(st.sampled_from(["sip:agent@192.0.2.1", "sips:agent@192.0.2.1", "tel:+1555", "urn:x"]))
    lines = [
        f"{method} {ruri} SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5070" + (f";branch={branch}" if branch else "") + rport,
        "From: <sip:alice@example.com>" + (f";tag={from_tag}" if from_tag else ""),
        "To: <sip:agent@example.com>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
    ]
    lines += draw(st.lists(OPTIONAL_HEADERS, max_size=5))
    return "\r\n".join(lines), draw(BODIES)


@st.composite
def response_text(draw: st.DrawFn, sent: list[Request]) -> tuple[str, bytes]:
    status = draw(st.sampled_from([100, 180, 200, 202, 401, 407, 481, 486, 500, 603]))
    if sent and draw(st.booleans()):
        req = draw(st.sampled_from(sent))
        h = req.headers
        lines = [f"SIP/2.0 {status} X", *(f"Via: {v}" for v in h.lines("Via"))]
        lines += [
            f"From: {h.lines('From')[0]}",
            f"To: {h.lines('To')[0]}",
            f"Call-ID: {h.lines('Call-ID')[0]}",
        ]
        lines.append(f"CSeq: {h.lines('CSeq')[0]}")
    else:
        method = draw(st.sampled_from(METHODS))
        lines = [
            f"SIP/2.0 {status} X",
            "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK" + draw(TOKENS),
            "From: <sip:a@b>;tag=1",
            "To: <sip:c@d>",
            "Call-ID: r1",
            f"CSeq: 1 {method}",
        ]
    lines += draw(st.lists(OPTIONAL_HEADERS, max_size=3))
    return "\r\n".join(lines), draw(BODIES)


def parse(text: str, body: bytes) -> Request | Response | None:
    try:
        return parse_message(text.encode() + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    except SipParseError:
        return None


COMMANDS = ["ringing", "accept", "reject", "bye", "refer", "accept_reinvite", "reject_reinvite"]


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@FUZZ
@given(st.data())
def test_random_traffic_never_breaks_the_ua(data: st.DataObject) -> None:
    errors = _Errors()
    logging.getLogger("palaver.sip.ua").addHandler(errors)
    try:
        _play(data)
    finally:
        logging.getLogger("palaver.sip.ua").removeHandler(errors)
    assert not errors.records, [r.getMessage() for r in errors.records]


def _play(data: st.DataObject) -> None:
    guarded = data.draw(st.booleans())
    h = Harness(
        allow_from=(ipaddress.ip_network("192.0.2.0/24"),) if guarded else None,
        inbound_credentials={"alice": "pw"} if guarded else None,
        trunk_credentials=("u", "p"),
    )
    h.send(invite_text(), SDP_OFFER)
    calls = [e.call for e in h.events()]
    h.ua.accept(calls[0], SDP_ANSWER, 0.0)
    sent: list[Request] = []
    ok = h.ua.transmits()[0][0]
    tag = ok.headers.lines("To")[0].rpartition("tag=")[2]
    for _ in range(data.draw(st.integers(1, 12))):
        kind = data.draw(st.sampled_from(["request", "request", "response", "timer", "command"]))
        out: list[tuple[Request | Response, Peer]] = []
        if kind == "request":
            msg = parse(*data.draw(request_text(tag)))
            if msg is not None:
                h.ua.receive(msg, data.draw(st.sampled_from(PEERS)), h.now)
        elif kind == "response":
            msg = parse(*data.draw(response_text(sent)))
            if msg is not None:
                h.ua.receive(msg, data.draw(st.sampled_from(PEERS)), h.now)
        elif kind == "timer":
            h.advance(h.now + data.draw(st.sampled_from([0.2, 0.5, 4.0, 33.0])))
        else:
            name = data.draw(st.sampled_from(COMMANDS))
            call = data.draw(st.sampled_from([*calls, "nope"]))
            try:
                if name in ("accept", "accept_reinvite"):
                    getattr(h.ua, name)(call, SDP_ANSWER, h.now)
                elif name in ("reject", "reject_reinvite"):
                    getattr(h.ua, name)(call, data.draw(st.sampled_from([486, 200, 603])), h.now)
                elif name == "refer":
                    h.ua.refer(call, data.draw(st.sampled_from(["sip:bob@example.com", "::"])), h.now)
                else:
                    getattr(h.ua, name)(call, h.now)
            except (UaStateError, ValueError):
                pass
        out += h.ua.transmits()
        for event in h.events():
            calls.append(event.call)
        for message, _ in out:
            if isinstance(message, Response):
                assert message.reason != "Internal error", message
            else:
                sent.append(message)
