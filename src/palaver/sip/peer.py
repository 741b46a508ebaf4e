"""Where a SIP message came from, or goes to: transport, address, and the stream connection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Peer", "TransportName"]

TransportName = Literal["udp", "tcp", "tls"]


@dataclass(frozen=True, slots=True)
class Peer:
    """A remote SIP element as seen by a transport.

    ``connection`` names the TCP/TLS connection a message arrived on (the transport's own
    number); a message sent to a peer with a live ``connection`` goes back on it (RFC 3261
    §18.2.2), otherwise the transport opens one to ``host``:``port``.  UDP peers have none.
    """

    transport: TransportName
    host: str
    port: int
    connection: int | None = None

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"

    @property
    def via_transport(self) -> str:
        """The transport token of a Via header (``SIP/2.0/UDP`` …)."""
        return self.transport.upper()
