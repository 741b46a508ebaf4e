"""Random identifiers in OpenAI's style: ``<prefix>_`` + 21 base62 characters."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 21
# Largest multiple of 62 that fits in a byte: rejecting bytes >= 248 keeps the draw unbiased.
_BYTE_LIMIT = 248


def new_id(prefix: str) -> str:
    """Return ``prefix + "_" + 21`` random base62 characters, e.g. ``new_id("event")``."""
    chars: list[str] = []
    while len(chars) < _ID_LENGTH:
        for byte in secrets.token_bytes(32):
            if byte < _BYTE_LIMIT:
                chars.append(_ALPHABET[byte % 62])
                if len(chars) == _ID_LENGTH:
                    break
    return f"{prefix}_{''.join(chars)}"
