"""Who may start calls (and send other out-of-dialog requests) to the UA: the inbound policy.

Rules, in order:

1. No allow list and no credentials: everyone is admitted.  That is only
   safe on a loopback bind; the configuration layer refuses it otherwise.
2. The source address is in an allow-list network: admitted.
3. Credentials are configured: the request must carry valid Digest
   credentials (RFC 3261 §22.2); otherwise it is answered 401 with a fresh
   challenge (``stale=true`` when the password was right but the nonce old).
4. Otherwise: 403.

Only out-of-dialog requests are checked, and never ACK or CANCEL (they
cannot be challenged, §22.1); requests inside a dialog that was admitted
carry its unguessable tags.  Digest runs as a UAS (401 and
WWW-Authenticate), not as a proxy (407).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from .digest import DigestServer, Verdict
from .peer import Peer

__all__ = ["Admit", "Challenge", "Forbid", "InboundPolicy", "Network", "PolicyDecision"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Admit:
    username: str | None = None  # the authenticated user, when credentials were checked


@dataclass(frozen=True, slots=True)
class Challenge:
    """Answer 401 with these WWW-Authenticate values."""

    www_authenticate: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Forbid:
    """Answer 403."""


PolicyDecision = Admit | Challenge | Forbid


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class InboundPolicy:
    """The rules above for one UA; ``check`` is pure (``now`` only dates nonces)."""

    def __init__(
        self,
        allow: tuple[Network, ...] | None,
        credentials: Mapping[str, str] | None,
        *,
        realm: str,
        secret: bytes,
        algorithms: tuple[str, ...] = ("MD5",),
        nonce_ttl: float = 300.0,
    ) -> None:
        self.allow = allow
        self.digest = (
            DigestServer(realm, credentials, secret, algorithms=algorithms, nonce_ttl=nonce_ttl)
            if credentials
            else None
        )

    @property
    def open(self) -> bool:
        """True when everyone is admitted (rule 1)."""
        return self.allow is None and self.digest is None

    def allowed_source(self, peer: Peer) -> bool:
        address = _address(peer.host)
        return address is not None and any(address in net for net in self.allow or ())

    def check(
        self, method: str, request_uri: str, authorization: list[str], peer: Peer, now: float
    ) -> PolicyDecision:
        if self.open or self.allowed_source(peer):
            return Admit()
        if self.digest is None:
            return Forbid()
        result = self.digest.verify(method, request_uri, authorization, now)
        if result.ok:
            return Admit(result.username)
        stale = result.verdict is Verdict.STALE
        return Challenge(tuple(self.digest.challenges(now, stale=stale)), result.reason or result.verdict)
