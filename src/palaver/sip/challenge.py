"""Authorization, Proxy-Authorization, WWW-Authenticate, Proxy-Authenticate values (RFC 3261 §25.1).

Only the syntax: ``scheme name=value, name="quoted", ...``.  Digest computation
belongs to a later layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._lex import is_token, parse_quoted, split_top_level
from .errors import SipParseError

__all__ = ["AuthHeader", "parse_auth_header", "quote_string"]


def quote_string(value: str) -> str:
    """``value`` as a quoted-string, escaping backslashes and quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class AuthHeader:
    """A challenge or credentials: the scheme and its parameters, values as written."""

    scheme: str
    params: tuple[tuple[str, str], ...]

    def param(self, name: str) -> str | None:
        """The value of ``name`` (case-insensitive), unquoted; None when absent."""
        lname = name.lower()
        for k, v in self.params:
            if k.lower() == lname:
                return parse_quoted(v, 0)[0] if v.startswith('"') else v
        return None

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"

    @property
    def qop_options(self) -> tuple[str, ...]:
        """The qop values (a quoted list in a challenge, one token in credentials)."""
        qop = self.param("qop")
        return tuple(q.strip() for q in qop.split(",") if q.strip()) if qop else ()

    def __str__(self) -> str:
        return f"{self.scheme} " + ", ".join(f"{k}={v}" for k, v in self.params)


def parse_auth_header(value: str, header: str = "Authorization") -> AuthHeader:
    """Parse one challenge or credentials value; SipParseError(400) on bad syntax."""

    def err(what: str) -> SipParseError:
        return SipParseError(400, f"Malformed {header} header: {what}")

    text = value.strip()
    cut = next((i for i, c in enumerate(text) if c in " \t"), len(text))
    scheme, rest = text[:cut], text[cut:].strip()
    if not is_token(scheme):
        raise err("bad auth scheme")
    if not rest:
        raise err("no parameters")
    try:
        parts = split_top_level(rest, ",")
    except ValueError:
        raise err("unterminated quoted string") from None
    params: list[tuple[str, str]] = []
    for part in parts:
        name, eq, raw = part.partition("=")
        name, raw = name.strip(), raw.strip()
        if not eq or not is_token(name) or not raw:
            raise err(f"bad parameter {part.strip()[:40]!r}")
        if raw.startswith('"'):
            try:
                _, end = parse_quoted(raw, 0)
            except ValueError:
                raise err("unterminated quoted string") from None
            if raw[end:].strip():
                raise err("text after a quoted value")
        elif not is_token(raw):
            raise err(f"bad value for {name!r}")
        params.append((name, raw))
    return AuthHeader(scheme, tuple(params))
