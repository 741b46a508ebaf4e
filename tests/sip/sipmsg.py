"""Small builders of SIP messages for the transaction tests."""

from __future__ import annotations

from palaver.sip import Request, Response, make_response, parse_message


def request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bK776asdhds",
    sent_by: str = "pc33.example.com",
    cseq: int = 1,
    call_id: str = "a84b4c76e66710@pc33.example.com",
    to_tag: str | None = None,
    cseq_method: str | None = None,
    route: bool = False,
) -> Request:
    via = f"SIP/2.0/UDP {sent_by}" + (f";branch={branch}" if branch is not None else "")
    to = "Bob <sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} sip:bob@example.com SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        f"To: {to}",
        "From: Alice <sip:alice@example.com>;tag=1928301774",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Contact: <sip:alice@pc33.example.com>",
    ]
    if route:
        lines += ["Route: <sip:p1.example.com;lr>", "Route: <sip:p2.example.com;lr>"]
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def response(req: Request, status: int, to_tag: str | None = "314") -> Response:
    return make_response(req, status, to_tag=None if status == 100 else to_tag)
