"""API-key authentication: ``Authorization: Bearer`` or the browser WebSocket subprotocols."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

INSECURE_KEY_PREFIX = "openai-insecure-api-key."


def presented_key(headers: Mapping[str, str], subprotocols: Sequence[str] = ()) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for proto in subprotocols:
        if proto.startswith(INSECURE_KEY_PREFIX):
            return proto[len(INSECURE_KEY_PREFIX) :]
    return None


def key_accepted(expected: str | None, presented: str | None) -> bool:
    """With no key configured the server is open; otherwise the keys must match (constant time)."""
    if expected is None:
        return True
    if presented is None:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
