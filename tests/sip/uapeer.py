"""A scripted SIP peer for the UA core tests: messages written as SIP text, virtual time, no sockets."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from palaver.sip import Peer, Request, Response, parse_cseq, parse_message
from palaver.sip.ua import UaConfig, UaEvent, UserAgent

UAC = Peer("udp", "192.0.2.10", 5070)
US_UDP = ("192.0.2.1", 5060)
US_TCP = ("192.0.2.1", 5060)
US_TLS = ("192.0.2.1", 5061)

SDP_OFFER = b"v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\n" + (
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
)
SDP_ANSWER = b"v=0\r\no=palaver 1 1 IN IP4 192.0.2.1\r\ns=-\r\n" + (
    b"c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
)


def counter_random() -> Callable[[int], bytes]:
    """Deterministic 'random' bytes: 1, 2, 3 ... big-endian (tags 0000000000000001 ...)."""
    n = itertools.count(1)
    return lambda size: next(n).to_bytes(size, "big")


def sip(text: str, body: bytes = b"") -> Request | Response:
    """Parse a message written with LF line ends (leading indentation removed); sets Content-Length."""
    lines = [line.strip() for line in text.strip().splitlines()]
    head = "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n"
    return parse_message(head.encode() + body)


def invite_text(
    *,
    branch: str = "z9hG4bK-inv1",
    call_id: str = "call-1@192.0.2.10",
    cseq: int = 1,
    via_host: str = "192.0.2.10:5070",
    transport: str = "UDP",
    extra: str = "",
    contact: str = "<sip:alice@192.0.2.10:5070>",
    ruri: str = "sip:agent@192.0.2.1:5060",
) -> str:
    lines = [
        f"INVITE {ruri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {via_host};branch={branch};rport",
        "Max-Forwards: 70",
        'From: "Alice" <sip:alice@example.com>;tag=a1',
        "To: <sip:agent@example.com>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} INVITE",
    ]
    if contact:
        lines.append(f"Contact: {contact}")
    lines.append("Content-Type: application/sdp")
    lines += [x for x in extra.strip().splitlines() if x.strip()]
    return "\n".join(lines)


def in_dialog_text(
    method: str,
    to_tag: str,
    *,
    cseq: int = 2,
    branch: str = "z9hG4bK-r2",
    call_id: str = "call-1@192.0.2.10",
    via_host: str = "192.0.2.10:5070",
    transport: str = "UDP",
    extra: str = "",
) -> str:
    lines = [
        f"{method} sip:agent@192.0.2.1:5060 SIP/2.0",
        f"Via: SIP/2.0/{transport} {via_host};branch={branch};rport",
        "Max-Forwards: 70",
        'From: "Alice" <sip:alice@example.com>;tag=a1',
        f"To: <sip:agent@example.com>;tag={to_tag}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
    ]
    lines += [x.strip() for x in extra.strip().splitlines() if x.strip()]
    return "\n".join(lines)


def response_to(
    request: Request, status: int, reason: str = "OK", extra: str = "", body: bytes = b""
) -> Response:
    """The peer's response to a request the UA sent (Via, From, To, Call-ID, CSeq copied)."""
    h = request.headers
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in h.lines("Via")]
    to = h.lines("To")[0]
    lines += [f"From: {h.lines('From')[0]}", f"To: {to}", f"Call-ID: {h.lines('Call-ID')[0]}"]
    lines += [f"CSeq: {h.lines('CSeq')[0]}"]
    lines += [x.strip() for x in extra.strip().splitlines() if x.strip()]
    msg = sip("\n".join(lines), body)
    assert isinstance(msg, Response)
    return msg


class Harness:
    """One UA, a virtual clock, and helpers to exchange messages with it."""

    def __init__(self, **config: Any) -> None:
        config.setdefault("contacts", {"udp": US_UDP, "tcp": US_TCP, "tls": US_TLS})
        self.ua = UserAgent(UaConfig(**config), random_bytes=counter_random())
        self.now = 0.0

    def send(self, text: str, body: bytes = b"", peer: Peer = UAC) -> list[tuple[Request | Response, Peer]]:
        msg = sip(text, body)
        self.ua.receive(msg, peer, self.now)
        return self.ua.transmits()

    def feed(self, msg: Request | Response, peer: Peer = UAC) -> list[tuple[Request | Response, Peer]]:
        self.ua.receive(msg, peer, self.now)
        return self.ua.transmits()

    def events(self) -> list[UaEvent]:
        out = []
        while (event := self.ua.next_event()) is not None:
            out.append(event)
        return out

    def advance(self, until: float) -> list[tuple[float, Request | Response, Peer]]:
        """Fire timers up to ``until``; (time, message, peer) for everything sent."""
        log: list[tuple[float, Request | Response, Peer]] = []
        for _ in range(10_000):
            when = self.ua.get_timer()
            if when is None or when > until:
                break
            self.now = max(self.now, when)
            self.ua.handle_timer(when)
            log += [(when, m, p) for m, p in self.ua.transmits()]
        self.now = max(self.now, until)
        return log

    def incoming_call(self, text: str | None = None, peer: Peer = UAC) -> str:
        """Send an INVITE; return the call handle of the IncomingCall event."""
        self.send(text or invite_text(), SDP_OFFER, peer)
        events = self.events()
        assert len(events) == 1, events
        return events[0].call

    def answered(self, text: str | None = None, peer: Peer = UAC) -> tuple[str, Response]:
        """An incoming call accepted; returns the handle and our 200."""
        call = self.incoming_call(text, peer)
        self.ua.accept(call, SDP_ANSWER, self.now)
        sent = self.ua.transmits()
        assert len(sent) == 1
        ok = sent[0][0]
        assert isinstance(ok, Response) and ok.status == 200
        return call, ok

    def confirmed(self, text: str | None = None, peer: Peer = UAC) -> tuple[str, str]:
        """An answered and ACKed call; returns the handle and our To tag."""
        call, ok = self.answered(text, peer)
        tag = to_tag(ok)
        self.send(ack_text(ok, peer), peer=peer)
        assert [type(e).__name__ for e in self.events()] == ["CallConfirmed"]
        return call, tag


def ack_text(ok: Response, peer: Peer = UAC) -> str:
    """The peer's ACK for our 2xx (its own transaction: a new branch)."""
    number = parse_cseq(ok.headers.lines("CSeq")[0]).number
    return in_dialog_text(
        "ACK",
        to_tag(ok),
        cseq=number,
        branch=f"z9hG4bK-ack{number}",
        call_id=ok.headers.lines("Call-ID")[0],
        transport=peer.via_transport,
    )


def to_tag(msg: Request | Response) -> str:
    from palaver.sip import parse_name_addr

    tag = parse_name_addr(msg.headers.lines("To")[0], "To").tag
    assert tag
    return tag


def statuses(sent: list[tuple[Request | Response, Peer]]) -> list[int | str]:
    return [m.status if isinstance(m, Response) else m.method for m, _ in sent]
