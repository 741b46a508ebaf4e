"""Small lexical helpers shared by the SIP modules (RFC 3261 section 25.1)."""

from __future__ import annotations

import re

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TOKEN_CHARS = frozenset(ALNUM + "-.!%*_+`'~")
WORD_CHARS = frozenset(ALNUM + "-.!%*_+`'~()<>:\\\"/[]?{}")
WS = " \t"

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def is_token(s: str) -> bool:
    return _TOKEN_RE.fullmatch(s) is not None


def split_top_level(s: str, sep: str) -> list[str]:
    """Split ``s`` at ``sep`` outside quoted strings and ``<...>``.

    Raises ValueError on an unterminated quoted string.
    """
    parts: list[str] = []
    cur: list[str] = []
    in_quote = False
    in_angle = False
    i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if in_quote:
            cur.append(ch)
            if ch == "\\" and i + 1 < n:
                cur.append(s[i + 1])
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
            cur.append(ch)
        elif ch == "<" and not in_angle:
            in_angle = True
            cur.append(ch)
        elif ch == ">" and in_angle:
            in_angle = False
            cur.append(ch)
        elif ch == sep and not in_angle:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    if in_quote:
        raise ValueError("unterminated quoted string")
    parts.append("".join(cur))
    return parts


def parse_quoted(s: str, start: int) -> tuple[str, int]:
    """Parse a quoted string whose opening quote is at ``s[start]``.

    Returns the unescaped content and the index just past the closing quote.
    """
    out: list[str] = []
    i = start + 1
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            out.append(s[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ValueError("unterminated quoted string")


def parse_uint(s: str, limit: int) -> int:
    """A decimal integer ``0 <= n <= limit`` (leading zeros allowed)."""
    if not s or not s.isascii() or not s.isdigit():
        raise ValueError("not a number")
    digits = s.lstrip("0") or "0"
    if len(digits) > len(str(limit)):
        raise ValueError("number too large")
    value = int(digits)
    if value > limit:
        raise ValueError("number too large")
    return value
