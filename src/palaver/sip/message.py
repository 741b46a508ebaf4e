"""SIP requests, responses and their header list (RFC 3261 section 7)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ._lex import split_top_level
from .uri import URI

__all__ = ["COMPACT_FORMS", "LIST_HEADERS", "Headers", "Message", "Request", "Response", "canonical_name"]

COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN = [
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Expires",
    "From",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Organization",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Record-Route",
    "Reply-To",
    "Require",
    "Retry-After",
    "Route",
    "Server",
    "Subject",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
    "RAck",
    "RSeq",
    "Path",
    "Privacy",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Reason",
    *COMPACT_FORMS.values(),
]
_CANONICAL = {name.lower(): name for name in _KNOWN}
_CANONICAL.update(COMPACT_FORMS)

# Headers whose grammar is a comma-separated list (RFC 3261 section 7.3.1).
LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Accept",
        "Accept-Contact",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Error-Info",
        "In-Reply-To",
        "Path",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Reject-Contact",
        "Require",
        "Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Privacy",
    )
)


def canonical_name(name: str) -> str:
    """Long, conventionally cased name of a known header (compact forms expanded); others unchanged."""
    return _CANONICAL.get(name.lower(), name)


class Headers:
    """Ordered, multi-valued header list with case-insensitive, compact-form-aware lookup.

    Each entry is one header line as ``(name, value)``: known names are stored
    in their canonical long form, unknown names as received; values are the
    unfolded text with surrounding whitespace removed, otherwise opaque.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every line of ``name`` by one (in place of the first, else appended)."""
        key = canonical_name(name).lower()
        out: list[tuple[str, str]] = []
        done = False
        for k, v in self._items:
            if k.lower() == key:
                if not done:
                    out.append((canonical_name(name), value))
                    done = True
            else:
                out.append((k, v))
        if not done:
            out.append((canonical_name(name), value))
        self._items = out

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != key]

    def lines(self, name: str) -> list[str]:
        """The raw value of each line named ``name``, unsplit."""
        key = canonical_name(name).lower()
        return [v for k, v in self._items if k.lower() == key]

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``; list headers are split at top-level commas, empties dropped."""
        key = canonical_name(name).lower()
        values = self.lines(name)
        if key not in LIST_HEADERS:
            return values
        out: list[str] = []
        for v in values:
            try:
                parts = split_top_level(v, ",")
            except ValueError:
                parts = [v]
            out.extend(p.strip() for p in parts if p.strip())
        return out

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        return values[0] if values else default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.lines(name))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k.lower(), v) for k, v in self._items] == [(k.lower(), v) for k, v in other._items]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        return Headers(self._items)


def _encode_headers(start: str, headers: Headers, body: bytes) -> bytes:
    out = headers.copy()
    out.set("Content-Length", str(len(body)))
    lines = [start]
    for name, value in out:
        if any(c in value for c in "\r\n") or any(c in name for c in "\r\n: "):
            raise ValueError(f"header {name!r} cannot be serialised")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


@dataclass(eq=True)
class Request:
    method: str
    uri: URI
    version: str = "SIP/2.0"
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def to_bytes(self) -> bytes:
        """Wire bytes: one line per header, long names, Content-Length set to the body length."""
        return _encode_headers(f"{self.method} {self.uri} {self.version}", self.headers, self.body)


@dataclass(eq=True)
class Response:
    version: str
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def to_bytes(self) -> bytes:
        return _encode_headers(f"{self.version} {self.status} {self.reason}", self.headers, self.body)


Message = Request | Response
