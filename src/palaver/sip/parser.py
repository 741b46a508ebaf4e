"""Sans-I/O SIP message parsing: datagrams and byte streams (RFC 3261 sections 7 and 18.3).

``parse_message`` takes one UDP datagram.  ``StreamFramer`` cuts a TCP/TLS
byte stream into messages.  Peer garbage never raises anything but
SipParseError (from ``parse_message``) and is returned, not raised, by the
framer.
"""

from __future__ import annotations

import re

from ._lex import is_token, parse_uint
from .errors import SipParseError
from .headers import (
    parse_call_id,
    parse_content_length,
    parse_cseq,
    parse_max_forwards,
    parse_name_addr,
    parse_via,
    split_list,
)
from .message import Headers, Request, Response
from .uri import SipURI, parse_uri

__all__ = ["KNOWN_METHODS", "MAX_HEADER_BYTES", "MAX_URI_LENGTH", "StreamFramer", "parse_message"]

KNOWN_METHODS = frozenset(
    {
        "ACK",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    }
)
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
MAX_URI_LENGTH = 4096
MAX_HEADER_LINES = 1000

_VERSION_RE = re.compile(r"SIP/(\d{1,9})\.(\d{1,9})", re.I)
_SINGLE = ("Call-ID", "CSeq", "From", "To", "Max-Forwards")
_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")


class _Head:
    __slots__ = ("headers", "is_response", "start")

    def __init__(self, start: str, headers: Headers, is_response: bool) -> None:
        self.start = start
        self.headers = headers
        self.is_response = is_response


def _error(
    status: int, reason: str, head: _Head | None = None, *, is_response: bool = False
) -> SipParseError:
    if head is None:
        return SipParseError(status, reason, is_response=is_response)
    h = head.headers
    return SipParseError(
        status,
        reason,
        is_response=head.is_response,
        via=tuple(h.lines("Via")),
        from_=h.get("From"),
        to=h.get("To"),
        call_id=h.get("Call-ID"),
        cseq=h.get("CSeq"),
    )


def _parse_head(raw: bytes) -> _Head:
    """Start line and header lines (everything before the empty line)."""
    is_response = raw.startswith(b"SIP/")
    try:
        text = raw.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise _error(400, "Header section is not valid UTF-8", is_response=is_response) from None
    lines = text.split("\r\n")
    for line in lines:
        if "\r" in line or "\n" in line:
            raise _error(400, "Bare CR or LF in header section", is_response=is_response)
    if len(lines) > MAX_HEADER_LINES:
        raise _error(400, "Too many header lines", is_response=is_response)
    start = lines[0]
    headers = Headers()
    name: str | None = None
    value = ""
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if name is None:
                raise _error(400, "Continuation line without a header", is_response=is_response)
            value = value.rstrip(" \t") + " " + line.lstrip(" \t")
            continue
        if name is not None:
            headers.add(name, value.strip(" \t"))
        hname, colon, value = line.partition(":")
        hname = hname.rstrip(" \t")
        if not colon or not is_token(hname):
            raise _error(400, f"Malformed header line {line[:40]!r}", is_response=is_response)
        name = hname
    if name is not None:
        headers.add(name, value.strip(" \t"))
    return _Head(start, headers, is_response)


def _check_version(version: str, head: _Head) -> None:
    m = _VERSION_RE.fullmatch(version)
    if m is None:
        raise _error(400, f"Malformed SIP version {version[:20]!r}", head)
    if (int(m.group(1)), int(m.group(2))) != (2, 0):
        raise _error(505, "Version Not Supported", head)


def _content_length(head: _Head) -> int | None:
    values = head.headers.lines("Content-Length")
    if not values:
        return None
    if len(values) > 1:
        raise _error(400, "Multiple Content-Length headers", head)
    try:
        n = parse_content_length(values[0])
    except SipParseError as exc:
        raise _error(400, exc.reason, head) from None
    if n > MAX_BODY_BYTES:
        raise _error(413, "Request Entity Too Large", head)
    return n


def _build(head: _Head, body: bytes) -> Request | Response:
    """Validate the start line and the core headers; build the message."""
    try:
        return _build_inner(head, body)
    except SipParseError as exc:
        if exc.via or exc.call_id is not None:
            raise
        raise _error(exc.status, exc.reason, head) from None


def _build_inner(head: _Head, body: bytes) -> Request | Response:
    h = head.headers
    if head.is_response:
        parts = head.start.split(" ", 2)
        if len(parts) < 3:
            raise _error(400, "Malformed status line", head)
        version, code, reason = parts
        _check_version(version, head)
        if len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] not in "123456":
            raise _error(400, "Malformed status code", head)
        msg: Request | Response = Response(version.upper(), int(code), reason, h, body)
    else:
        parts = head.start.split(" ")
        if len(parts) != 3 or not all(parts):
            raise _error(400, "Malformed request line", head)
        method, uri_text, version = parts
        if not is_token(method):
            raise _error(400, "Malformed method", head)
        if len(uri_text) > MAX_URI_LENGTH:
            raise _error(414, "Request-URI Too Long", head)
        _check_version(version, head)
        try:
            uri = parse_uri(uri_text)
        except SipParseError as exc:
            raise _error(400, f"Bad Request-URI: {exc.reason}", head) from None
        if isinstance(uri, SipURI) and uri.headers:
            raise _error(400, "Bad Request-URI: headers are not allowed in a Request-URI", head)
        msg = Request(method, uri, version.upper(), h, body)
    _validate_headers(head)
    if isinstance(msg, Request):
        cseq = parse_cseq(h.lines("CSeq")[0])
        if cseq.method != msg.method:
            status = 400 if msg.method in KNOWN_METHODS else 501
            raise _error(status, "CSeq method does not match the request method", head)
    else:
        parse_cseq(h.lines("CSeq")[0])
    return msg


def _validate_headers(head: _Head) -> None:
    h = head.headers
    for name in _REQUIRED:
        if name not in h:
            raise _error(400, f"Missing {name} header", head)
    for name in _SINGLE:
        if len(h.lines(name)) > 1:
            raise _error(400, f"Multiple {name} headers", head)
    parse_cseq(h.lines("CSeq")[0])
    for value in split_list(h, "Via"):
        parse_via(value)
    for name in ("From", "To"):
        parse_name_addr(h.lines(name)[0], name)
    for value in split_list(h, "Contact"):
        if value != "*":
            parse_name_addr(value, "Contact")
    for name in ("Route", "Record-Route"):
        for value in split_list(h, name):
            parse_name_addr(value, name)
    parse_call_id(h.lines("Call-ID")[0])
    for value in h.lines("Max-Forwards"):
        parse_max_forwards(value)
    for value in h.lines("Date"):
        if not value.rstrip().endswith("GMT"):
            raise _error(400, "Malformed Date header: not in GMT", head)
    for value in h.lines("Expires"):
        try:
            parse_uint(value.strip(), 2**32 - 1)
        except ValueError:
            raise _error(400, "Malformed Expires header", head) from None


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    return data[:end], data[end + 4 :]


def parse_message(data: bytes) -> Request | Response:
    """Parse one datagram.

    The body is framed by Content-Length; bytes beyond it are ignored, and a
    datagram without Content-Length has the rest of the datagram as its body.
    Raises SipParseError for anything malformed.
    """
    try:
        return _parse_datagram(data)
    except SipParseError:
        raise
    except Exception as exc:  # defensive: never leak a foreign exception
        raise SipParseError(400, f"Unparseable message ({type(exc).__name__})") from None


def _parse_datagram(data: bytes) -> Request | Response:
    data = data.lstrip(b"\r\n")
    if not data:
        raise _error(400, "Empty message")
    split = _split_head(data)
    is_response = data.startswith(b"SIP/")
    if split is None:
        # Lenient: a datagram whose last header line ends in CRLF but lacks the
        # empty line is taken as headers with an empty body (RFC 4475 baddn
        # is archived that way); anything else has lost its framing.
        if not data.endswith(b"\r\n"):
            raise _error(400, "Missing empty line after the header section", is_response=is_response)
        split = data[:-2], b""
    raw_head, rest = split
    if len(raw_head) > MAX_HEADER_BYTES:
        raise _error(400, "Header section too long", is_response=is_response)
    head = _parse_head(raw_head)
    length = _content_length(head)
    if length is None:
        body = rest
    elif length > len(rest):
        raise _error(400, "Content-Length larger than the body", head)
    else:
        body = rest[:length]
    return _build(head, body)


class StreamFramer:
    """Frame SIP messages on a stream transport (TCP, TLS, WebSocket-less).

    ``feed`` returns the messages (and SipParseErrors) completed by the new
    bytes, in order.  Content-Length is mandatory; CRLF keep-alives between
    messages are skipped.  After a framing error (no, bad or oversized
    Content-Length, an unreadable or oversized header section) the stream is
    unusable: ``broken`` becomes true, the error is returned once, and later
    bytes are ignored.  The transport should close the connection.
    """

    def __init__(self, *, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES):
        self._buf = bytearray()
        self._max_header = max_header_bytes
        self._max_body = max_body_bytes
        self._head: _Head | None = None
        self._need = 0
        self._scanned = 0
        self.broken = False
        self.keepalives = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Request | Response | SipParseError]:
        out: list[Request | Response | SipParseError] = []
        if self.broken:
            return out
        self._buf += data
        while True:
            try:
                item = self._next()
            except SipParseError as exc:
                out.append(exc)
                continue
            except Exception as exc:  # defensive: never leak a foreign exception
                self._break()
                out.append(SipParseError(400, f"Unparseable message ({type(exc).__name__})"))
                return out
            if item is None:
                return out
            out.append(item)

    def _break(self) -> None:
        self.broken = True
        self._buf.clear()
        self._head = None

    def _fail(self, exc: SipParseError) -> SipParseError:
        self._break()
        return exc

    def _next(self) -> Request | Response | None:
        if self.broken:
            return None
        if self._head is None:
            # Skip keep-alive CRLFs (RFC 5626 section 3.5.1) between messages.
            while self._buf[:2] == b"\r\n":
                del self._buf[:2]
                self.keepalives += 1
                self._scanned = 0
            # Resume the search where the last one stopped: byte-at-a-time feeding stays linear.
            end = self._buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                self._scanned = len(self._buf)
                if len(self._buf) > self._max_header:
                    raise self._fail(_error(400, "Header section too long"))
                return None
            self._scanned = 0
            if end > self._max_header:
                raise self._fail(_error(400, "Header section too long"))
            raw_head = bytes(self._buf[:end])
            del self._buf[: end + 4]
            try:
                head = _parse_head(raw_head)
                length = _content_length(head)
            except SipParseError as exc:
                raise self._fail(exc) from None
            if length is None:
                raise self._fail(_error(400, "Missing Content-Length on a stream transport", head))
            if length > self._max_body:
                raise self._fail(_error(413, "Request Entity Too Large", head))
            self._head, self._need = head, length
        if len(self._buf) < self._need:
            return None
        head, self._head = self._head, None
        body = bytes(self._buf[: self._need])
        del self._buf[: self._need]
        return _build(head, body)
