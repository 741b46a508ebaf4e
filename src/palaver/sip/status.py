"""Status codes, reason phrases and building a response to a request (RFC 3261 §8.2.6, §21)."""

from __future__ import annotations

from .errors import SipParseError
from .headers import parse_name_addr
from .message import Headers, Request, Response

__all__ = ["REASON_PHRASES", "make_response", "reason_phrase", "response_for_error"]

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def reason_phrase(status: int) -> str:
    """The RFC's phrase for ``status``, else a generic one for its class."""
    generic = {1: "Provisional", 2: "Success", 3: "Redirection", 4: "Client Error", 5: "Server Error"}
    return REASON_PHRASES.get(status) or generic.get(status // 100, "Global Failure")


def _with_tag(to: str, tag: str | None) -> str:
    if tag is None or parse_name_addr(to, "To").tag is not None:
        return to
    return f"{to};tag={tag}"


def _response(
    status: int, reason: str | None, vias: list[str], from_: str, to: str, call_id: str, cseq: str
) -> Response:
    if not 100 <= status <= 699:
        raise ValueError(f"status {status} is not in 100..699")
    h = Headers()
    for via in vias:
        h.add("Via", via)
    for name, value in (("From", from_), ("To", to), ("Call-ID", call_id), ("CSeq", cseq)):
        h.add(name, value)
    return Response("SIP/2.0", status, reason_phrase(status) if reason is None else reason, h)


def make_response(
    request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> Response:
    """A response to ``request`` per §8.2.6.2: Via, From, To (+tag), Call-ID and CSeq copied.

    ``to_tag`` is added unless the To already has a tag (never for 100).
    Timestamp is copied into a 100 (Trying).  The caller adds any other header.
    """
    h = request.headers
    to = h.lines("To")[0]
    resp = _response(
        status,
        reason,
        h.lines("Via"),
        h.lines("From")[0],
        to if status == 100 else _with_tag(to, to_tag),
        h.lines("Call-ID")[0],
        h.lines("CSeq")[0],
    )
    if status == 100:
        for value in h.lines("Timestamp"):
            resp.headers.add("Timestamp", value)
    return resp


def response_for_error(error: SipParseError, *, to_tag: str | None = None) -> Response | None:
    """The stateless answer to a malformed request, or None (a response, or too little to answer)."""
    if not error.can_answer:
        return None
    assert error.from_ is not None and error.to is not None
    assert error.call_id is not None and error.cseq is not None
    try:
        to = _with_tag(error.to, to_tag)
    except SipParseError:
        to = error.to
    return _response(error.status, error.reason, list(error.via), error.from_, to, error.call_id, error.cseq)
