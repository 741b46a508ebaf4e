"""Parsed, read-only views of the header values the SIP core relies on.

Each ``parse_*`` function takes one header value (as ``Headers.get_all`` gives
it) and raises SipParseError(400, "Malformed <Header> ...") on bad syntax.
Header parameter values are kept as written (a quoted value keeps its quotes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ._lex import TOKEN_CHARS, WORD_CHARS, is_token, parse_quoted, parse_uint, split_top_level
from .errors import SipParseError
from .message import Headers
from .uri import URI, parse_uri, split_hostport

__all__ = [
    "CSeq",
    "MediaType",
    "NameAddr",
    "Params",
    "Via",
    "parse_call_id",
    "parse_contacts",
    "parse_content_length",
    "parse_content_type",
    "parse_cseq",
    "parse_expires",
    "parse_max_forwards",
    "parse_name_addr",
    "parse_routes",
    "parse_token_list",
    "parse_via",
    "split_list",
]

Params = tuple[tuple[str, str | None], ...]

MAX_CSEQ = 2**32 - 1
_PARAM_VALUE_CHARS = TOKEN_CHARS | frozenset("[]:")


def _err(header: str, what: str) -> SipParseError:
    return SipParseError(400, f"Malformed {header} header: {what}")


def _param_lookup(params: Params, name: str) -> str | None:
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return "" if v is None else v
    return None


def _parse_params(text: str, header: str) -> Params:
    """``*( ";" name [ "=" value ] )`` with LWS allowed around ``;`` and ``=``."""
    if not text.strip():
        return ()
    try:
        parts = split_top_level(text, ";")
    except ValueError:
        raise _err(header, "unterminated quoted string") from None
    if parts[0].strip():
        raise _err(header, f"unexpected text {parts[0].strip()!r}")
    params: list[tuple[str, str | None]] = []
    for part in parts[1:]:
        name, eq, value = part.partition("=")
        name = name.strip()
        if not is_token(name):
            raise _err(header, "empty or bad parameter name")
        if not eq:
            params.append((name, None))
            continue
        value = value.strip()
        if value.startswith('"'):
            try:
                _, end = parse_quoted(value, 0)
            except ValueError:
                raise _err(header, "unterminated quoted string") from None
            if value[end:].strip():
                raise _err(header, "text after quoted parameter value")
        elif not value or any(c not in _PARAM_VALUE_CHARS for c in value):
            raise _err(header, f"bad value for parameter {name!r}")
        params.append((name, value))
    return tuple(params)


@dataclass(frozen=True, slots=True)
class Via:
    protocol: str
    version: str
    transport: str
    host: str
    port: int | None
    params: Params

    def param(self, name: str) -> str | None:
        return _param_lookup(self.params, name)

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def rport(self) -> int | None:
        """The rport value, if it has one."""
        value = self.param("rport")
        return int(value) if value and value.isdigit() and len(value) <= 5 else None

    @property
    def has_rport(self) -> bool:
        return self.param("rport") is not None

    @property
    def maddr(self) -> str | None:
        return self.param("maddr")

    @property
    def ttl(self) -> int | None:
        value = self.param("ttl")
        return int(value) if value and value.isdigit() and len(value) <= 3 else None

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """``(host, port)`` as written; the host lower-cased for comparison."""
        return self.host.lower(), self.port

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)
        return f"{self.protocol}/{self.version}/{self.transport} {self.host}{port}{params}"


_VIA_RE = re.compile(r"\s*([^\s/;]+)\s*/\s*([^\s/;]+)\s*/\s*([^\s/;]+)\s+([^\s;]+)\s*(;.*)?", re.S)


def parse_via(value: str) -> Via:
    """One via-parm: ``SIP/2.0/UDP host[:port];params``."""
    m = _VIA_RE.fullmatch(value)
    if m is None:
        raise _err("Via", "expected protocol/version/transport sent-by")
    protocol, version, transport, sent_by, ptext = m.groups()
    if not (is_token(protocol) and is_token(version) and is_token(transport)):
        raise _err("Via", "bad sent-protocol")
    try:
        host, port = split_hostport(sent_by)
    except SipParseError:
        raise _err("Via", "bad sent-by") from None
    params = _parse_params(ptext or "", "Via")
    for name in ("ttl", "received", "maddr", "branch"):
        v = _param_lookup(params, name)
        if v == "":
            raise _err("Via", f"{name} without a value")
    ttl = _param_lookup(params, "ttl")
    if ttl is not None:
        try:
            parse_uint(ttl, 255)
        except ValueError:
            raise _err("Via", "ttl is not in 0..255") from None
    rport = _param_lookup(params, "rport")
    if rport:
        try:
            parse_uint(rport, 65535)
        except ValueError:
            raise _err("Via", "rport is not a port number") from None
    return Via(protocol, version, transport.upper(), host, port, params)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """From, To, Contact, Route, Record-Route: display name, URI and header parameters."""

    display_name: str | None
    uri: URI
    params: Params = ()

    def param(self, name: str) -> str | None:
        return _param_lookup(self.params, name)

    @property
    def tag(self) -> str | None:
        return self.param("tag")


def parse_name_addr(value: str, header: str = "From") -> NameAddr:
    """``[display-name] <URI> *params`` or ``addr-spec *params``."""
    s = value.strip()
    display: str | None = None
    if s.startswith('"'):
        try:
            display, end = parse_quoted(s, 0)
        except ValueError:
            raise _err(header, "unterminated quoted display name") from None
        rest = s[end:].lstrip(" \t")
        if not rest.startswith("<"):
            raise _err(header, "expected <URI> after display name")
        s = rest
        lt = 0
    else:
        lt = s.find("<")
        if lt >= 0:
            semi = s.find(";")
            if 0 <= semi < lt:
                lt = -1  # "<" only inside a parameter: addr-spec form
    if lt >= 0:
        if display is None:
            words = s[:lt].split()
            for w in words:
                if not is_token(w):
                    raise _err(header, "display name with non-token characters must be quoted")
            display = " ".join(words) if words else None
        gt = s.find(">", lt)
        if gt < 0:
            raise _err(header, "missing '>'")
        uri_text = s[lt + 1 : gt]
        if not uri_text or any(c in " \t" for c in uri_text):
            raise _err(header, "whitespace inside <>")
        tail = s[gt + 1 :]
    else:
        uri_text, semi_sep, tail = s.partition(";")
        uri_text = uri_text.strip()
        tail = semi_sep + tail
        if not uri_text or any(c in uri_text for c in ' \t,?<>"'):
            raise _err(header, "a URI with headers, spaces or commas must be enclosed in <>")
    try:
        uri = parse_uri(uri_text)
    except SipParseError as exc:
        raise _err(header, exc.reason) from None
    return NameAddr(display, uri, _parse_params(tail, header))


def format_name_addr(na: NameAddr) -> str:
    """Serialise a NameAddr in the always-safe ``"display" <uri>;params`` form."""
    out = ""
    if na.display_name is not None:
        escaped = na.display_name.replace("\\", "\\\\").replace('"', '\\"')
        out = f'"{escaped}" '
    out += f"<{na.uri}>"
    for k, v in na.params:
        out += f";{k}" if v is None else f";{k}={v}"
    return out


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(value: str) -> CSeq:
    parts = value.split()
    if len(parts) != 2 or not is_token(parts[1]):
        raise _err("CSeq", "expected '<number> <method>'")
    try:
        number = parse_uint(parts[0], MAX_CSEQ)
    except ValueError:
        raise _err("CSeq", "sequence number not in 0..2**32-1") from None
    return CSeq(number, parts[1])


def parse_max_forwards(value: str) -> int:
    try:
        return parse_uint(value.strip(), 255)
    except ValueError:
        raise _err("Max-Forwards", "not in 0..255") from None


def parse_content_length(value: str) -> int:
    try:
        return parse_uint(value.strip(), 2**31 - 1)
    except ValueError:
        raise _err("Content-Length", "not a non-negative integer") from None


def parse_call_id(value: str) -> str:
    v = value.strip()
    local, at, host = v.partition("@")
    if not local or (at and not host) or any(c not in WORD_CHARS for c in local + host):
        raise _err("Call-ID", "expected word[@word]")
    return v


def split_list(headers: Headers, name: str) -> list[str]:
    """Every element of a list header, stripped; an empty element is an error."""
    out: list[str] = []
    for line in headers.lines(name):
        try:
            parts = split_top_level(line, ",")
        except ValueError:
            raise _err(name, "unterminated quoted string") from None
        for part in parts:
            part = part.strip()
            if not part:
                raise _err(name, "empty list element")
            out.append(part)
    return out


def parse_contacts(headers: Headers) -> tuple[NameAddr, ...] | Literal["*"]:
    """Every Contact (over all lines), or ``"*"`` for the REGISTER wildcard."""
    values = split_list(headers, "Contact")
    if "*" in values:
        if len(values) != 1:
            raise _err("Contact", "'*' must be the only Contact")
        return "*"
    return tuple(parse_name_addr(v, "Contact") for v in values)


def parse_routes(headers: Headers, name: str = "Route") -> tuple[NameAddr, ...]:
    """Route, Record-Route (or Path): every element, in order."""
    return tuple(parse_name_addr(v, name) for v in split_list(headers, name))


def parse_token_list(headers: Headers, name: str) -> tuple[str, ...]:
    """Allow, Supported, Require, Proxy-Require, Unsupported: the tokens, in order."""
    out = tuple(split_list(headers, name))
    for token in out:
        if not is_token(token):
            raise _err(name, f"{token[:40]!r} is not a token")
    return out


def parse_expires(value: str) -> int:
    """Expires header (delta-seconds, 0..2**32-1)."""
    try:
        return parse_uint(value.strip(), MAX_CSEQ)
    except ValueError:
        raise _err("Expires", "not in 0..2**32-1") from None


@dataclass(frozen=True, slots=True)
class MediaType:
    """Content-Type / Accept element: ``type/subtype;params`` (type and subtype lower-cased)."""

    type: str
    subtype: str
    params: Params = ()

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}"

    def param(self, name: str) -> str | None:
        return _param_lookup(self.params, name)

    def __str__(self) -> str:
        return self.mime + "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)


def parse_content_type(value: str) -> MediaType:
    mime, semi, ptext = value.partition(";")
    type_, slash, subtype = mime.partition("/")
    type_, subtype = type_.strip(), subtype.strip()
    if not slash or not is_token(type_) or not is_token(subtype):
        raise _err("Content-Type", "expected type/subtype")
    return MediaType(type_.lower(), subtype.lower(), _parse_params(semi + ptext, "Content-Type"))
