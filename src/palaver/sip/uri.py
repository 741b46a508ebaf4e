"""SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966), parse and serialise.

Escapes (``%HH``) in the user, password, parameters and headers of a SIP URI
are decoded exactly once when parsing and re-applied when serialising, so
``parse_uri(str(u)) == u``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote

from ._lex import ALNUM
from .errors import SipParseError

__all__ = ["URI", "AbsoluteURI", "SipURI", "TelURI", "parse_uri"]

_UNRESERVED = ALNUM + "-_.!~*'()"
_USER_SAFE = frozenset(_UNRESERVED + "&=+$,;?/")
_PASSWORD_SAFE = frozenset(_UNRESERVED + "&=+$,")
_PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
_HEADER_SAFE = frozenset(_UNRESERVED + "[]/?:+$")

_ESCAPE_OK = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_TEL_RE = re.compile(r"\+?[0-9A-Fa-f*#\-.()]+")
_OPAQUE_RE = re.compile(r"[^\s<>\"\x00-\x1f\x7f]+")


def _err(what: str) -> SipParseError:
    return SipParseError(400, f"Malformed URI: {what}")


def _unescape(s: str, safe: frozenset[str], what: str) -> str:
    if _ESCAPE_OK.fullmatch(s) is None:
        raise _err(f"bad escape in {what}")
    for ch in s:
        if ch != "%" and ch not in safe:
            raise _err(f"character {ch!r} not allowed in {what}")
    return unquote(s, errors="surrogateescape")


def _escape(s: str, safe: frozenset[str]) -> str:
    out: list[str] = []
    for ch in s:
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


def _check_host(host: str) -> None:
    if host.startswith("["):
        if not host.endswith("]"):
            raise _err("unterminated IPv6 reference")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _err("bad IPv6 address") from None
        return
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not host or any(_LABEL_RE.fullmatch(label) is None for label in labels):
        raise _err(f"bad host {host[:64]!r}")


def split_hostport(hostport: str) -> tuple[str, int | None]:
    """``host[:port]`` with the host checked; IPv6 keeps its brackets."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _err("unterminated IPv6 reference")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _err("junk after IPv6 reference")
        port_s = rest[1:] if rest else None
    else:
        host, sep, port_s_ = hostport.partition(":")
        port_s = port_s_ if sep else None
    _check_host(host)
    port: int | None = None
    if port_s is not None:
        if not port_s.isascii() or not port_s.isdigit() or len(port_s) > 5 or int(port_s) > 65535:
            raise _err("bad port")
        port = int(port_s)
    return host, port


@dataclass(frozen=True, slots=True)
class SipURI:
    """``sip:`` or ``sips:`` URI; user, password, params and headers hold decoded text."""

    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        """The value of a URI parameter (case-insensitive name); '' for a valueless one."""
        lname = name.lower()
        for k, v in self.params:
            if k.lower() == lname:
                return "" if v is None else v
        return None

    def has_param(self, name: str) -> bool:
        lname = name.lower()
        return any(k.lower() == lname for k, _ in self.params)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(_escape(self.user, _USER_SAFE))
            if self.password is not None:
                out += [":", _escape(self.password, _PASSWORD_SAFE)]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for k, v in self.params:
            out += [";", _escape(k, _PARAM_SAFE)]
            if v is not None:
                out += ["=", _escape(v, _PARAM_SAFE)]
        if self.headers:
            out.append("?")
            out.append(
                "&".join(f"{_escape(k, _HEADER_SAFE)}={_escape(v, _HEADER_SAFE)}" for k, v in self.headers)
            )
        return "".join(out)


@dataclass(frozen=True, slots=True)
class TelURI:
    """``tel:`` URI (RFC 3966): the number as written and its parameters."""

    number: str
    params: tuple[tuple[str, str | None], ...] = ()

    def param(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.params:
            if k.lower() == lname:
                return "" if v is None else v
        return None

    def __str__(self) -> str:
        out = ["tel:", self.number]
        for k, v in self.params:
            out += [";", _escape(k, _PARAM_SAFE)]
            if v is not None:
                out += ["=", _escape(v, _PARAM_SAFE)]
        return "".join(out)


@dataclass(frozen=True, slots=True)
class AbsoluteURI:
    """Any other scheme, kept opaque (``isbn:``, ``http:``, ...)."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


URI = SipURI | TelURI | AbsoluteURI


def _parse_params(text: str) -> tuple[tuple[str, str | None], ...]:
    params: list[tuple[str, str | None]] = []
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if not name:
            raise _err("empty parameter")
        dname = _unescape(name, _PARAM_SAFE, "parameter")
        if eq:
            if not value:
                raise _err("empty parameter value")
            params.append((dname, _unescape(value, _PARAM_SAFE, "parameter")))
        else:
            params.append((dname, None))
    return tuple(params)


def parse_uri(text: str) -> URI:
    """Parse a URI; raises SipParseError(400) when it is malformed."""
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME_RE.fullmatch(scheme) is None:
        raise _err("missing or bad scheme")
    lscheme = scheme.lower()
    if lscheme in ("sip", "sips"):
        return _parse_sip(lscheme, rest)
    if lscheme == "tel":
        number, semi, ptext = rest.partition(";")
        if _TEL_RE.fullmatch(number) is None:
            raise _err("bad telephone number")
        return TelURI(number, _parse_params(ptext) if semi else ())
    if _OPAQUE_RE.fullmatch(rest) is None:
        raise _err("bad characters")
    return AbsoluteURI(scheme, rest)


def _parse_sip(scheme: str, rest: str) -> SipURI:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        u, colon, p = userinfo.partition(":")
        if not u:
            raise _err("empty user")
        user = _unescape(u, _USER_SAFE, "user")
        if colon:
            password = _unescape(p, _PASSWORD_SAFE, "password")
    rest, qmark, htext = rest.partition("?")
    hostport, semi, ptext = rest.partition(";")
    if not hostport:
        raise _err("missing host")
    host, port = split_hostport(hostport)
    params = _parse_params(ptext) if semi else ()
    headers: list[tuple[str, str]] = []
    if qmark:
        for part in htext.split("&"):
            name, eq, value = part.partition("=")
            if not name or not eq:
                raise _err("bad URI header")
            headers.append(
                (_unescape(name, _HEADER_SAFE, "URI header"), _unescape(value, _HEADER_SAFE, "URI header"))
            )
    return SipURI(scheme, host, user, password, port, params, tuple(headers))
