"""Dialogs (RFC 3261 §12): identity, route set, remote target, CSeq, in-dialog requests.

Palaver is the UAS of every dialog it has, so a dialog is made from an INVITE
(``Dialog.from_invite``).  For a UAS the route set is the INVITE's
Record-Route list *in order* (the first entry is the proxy nearest to us), the
remote target is the INVITE's Contact, the remote sequence number is the
INVITE's CSeq and the local one starts empty (§12.1.1).

``Dialog.request`` builds an in-dialog request per §12.2.1.1 (loose routing,
and the strict-router rewrite when the first route has no ``lr``);
``next_hop`` says where to send it (§8.1.2): the first route, else the remote
target.  ``destination`` turns that URI into a Peer on the dialog's transport.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass, replace

from .errors import SipParseError
from .headers import NameAddr, format_name_addr, parse_cseq, parse_name_addr, parse_routes, parse_via
from .message import Headers, Request
from .peer import Peer, TransportName
from .uri import URI, SipURI

__all__ = ["Dialog", "DialogId", "destination", "dialog_id_of"]

DialogId = tuple[str, str, str]
"""(Call-ID, local tag, remote tag); a missing remote tag (RFC 2543 peer) is ``""``."""

_TRANSPORTS: dict[str, TransportName] = {"udp": "udp", "tcp": "tcp", "tls": "tls"}


def dialog_id_of(request: Request) -> DialogId | None:
    """The id of the dialog an incoming request claims (its To tag is our local tag), or None."""
    h = request.headers
    local = parse_name_addr(h.lines("To")[0], "To").tag
    if not local:
        return None
    remote = parse_name_addr(h.lines("From")[0], "From").tag or ""
    return h.lines("Call-ID")[0].strip(), local, remote


def _without_tag(na: NameAddr) -> NameAddr:
    return replace(na, params=tuple((k, v) for k, v in na.params if k.lower() != "tag"))


def _host(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _same_host(a: str, b: str) -> bool:
    a, b = _host(a), _host(b)
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a.lower().rstrip(".") == b.lower().rstrip(".")


def destination(uri: URI, dialog_peer: Peer, reuse: tuple[tuple[str, int], ...] = ()) -> Peer | None:
    """The Peer to send a request whose next hop is ``uri`` to, or None (not a SIP URI).

    The transport is the URI's ``transport`` parameter (``sips:`` means TLS)
    when it names one we know, else the dialog's.  ``maddr`` overrides the
    host.  The port defaults to 5061 for TLS, else 5060.  On a stream
    transport the dialog's connection is reused when the next hop is one of
    the ``reuse`` addresses (where the dialog's requests came from, and their
    Via sent-by) and the transport is the same; a dead connection makes the
    transport connect to host:port instead.
    """
    if not isinstance(uri, SipURI):
        return None
    transport: TransportName = dialog_peer.transport
    if uri.scheme == "sips":
        transport = "tls"
    else:
        named = _TRANSPORTS.get((uri.param("transport") or "").lower())
        if named is not None:
            transport = named
    host = _host(uri.param("maddr") or uri.host)
    port = uri.port if uri.port is not None else (5061 if transport == "tls" else 5060)
    connection: int | None = None
    same_transport = transport == dialog_peer.transport and dialog_peer.reliable
    if same_transport and any(_same_host(host, h) and port == p for h, p in reuse):
        connection = dialog_peer.connection
    return Peer(transport, host, port, connection)


@dataclass
class Dialog:
    """The state of one dialog (§12.1.1, UAS side); mutable: CSeqs and the remote target move."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr
    remote_uri: NameAddr
    remote_target: URI
    route_set: tuple[NameAddr, ...]
    remote_seq: int | None
    local_seq: int | None
    secure: bool
    peer: Peer
    reuse: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_invite(cls, invite: Request, local_tag: str, peer: Peer) -> Dialog:
        """The dialog a 2xx/18x (with ``local_tag``) to ``invite`` from ``peer`` creates.

        An RFC 2543 INVITE without Contact gets the From URI as remote target;
        SipParseError for ``Contact: *``.
        """
        h = invite.headers
        contact = _first_contact(h) if "Contact" in h else parse_name_addr(h.lines("From")[0], "From")
        via = parse_via(h.get_all("Via")[0])
        reuse = ((peer.host, peer.port), (via.host, via.port or (5061 if peer.transport == "tls" else 5060)))
        secure = (isinstance(invite.uri, SipURI) and invite.uri.scheme == "sips") or (
            isinstance(contact.uri, SipURI) and contact.uri.scheme == "sips"
        )
        return cls(
            call_id=h.lines("Call-ID")[0].strip(),
            local_tag=local_tag,
            remote_tag=parse_name_addr(h.lines("From")[0], "From").tag or "",
            local_uri=_without_tag(parse_name_addr(h.lines("To")[0], "To")),
            remote_uri=_without_tag(parse_name_addr(h.lines("From")[0], "From")),
            remote_target=contact.uri,
            route_set=parse_routes(h, "Record-Route"),
            remote_seq=parse_cseq(h.lines("CSeq")[0]).number,
            local_seq=None,
            secure=secure,
            peer=peer,
            reuse=reuse,
        )

    @property
    def id(self) -> DialogId:
        return self.call_id, self.local_tag, self.remote_tag

    def accept_remote_cseq(self, number: int) -> bool:
        """§12.2.2: False if a request's CSeq is lower than the last one (answer 500); else record it."""
        if self.remote_seq is not None and number < self.remote_seq:
            return False
        self.remote_seq = number
        return True

    def refresh_target(self, request: Request) -> None:
        """A target-refresh request (re-INVITE, UPDATE) replaces the remote target with its Contact."""
        with contextlib.suppress(SipParseError):  # no usable Contact: keep the old target
            self.remote_target = _first_contact(request.headers).uri

    def next_cseq(self) -> int:
        """The local CSeq for a new request (starts at 1, §12.2.1.1)."""
        self.local_seq = 1 if self.local_seq is None else self.local_seq + 1
        return self.local_seq

    def _strict(self) -> bool:
        first = self.route_set[0].uri if self.route_set else None
        return isinstance(first, SipURI) and not first.has_param("lr")

    def next_hop(self) -> URI:
        """Where an in-dialog request goes first (§8.1.2): the first route, else the remote target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def destination(self) -> Peer | None:
        """The Peer for ``next_hop`` (None when it is not a SIP URI)."""
        return destination(self.next_hop(), self.peer, self.reuse)

    def request(self, method: str, via: str, *, cseq: int | None = None, max_forwards: int = 70) -> Request:
        """An in-dialog request (§12.2.1.1) with ``via`` as its only Via and the next local CSeq.

        Loose routing: Request-URI = remote target, Route = the route set.
        Strict router first (no ``lr``): Request-URI = that route's URI (URI
        headers and ``method`` stripped), Route = the rest plus the remote
        target.  The caller adds Contact, body and method-specific headers.
        """
        number = self.next_cseq() if cseq is None else cseq
        routes: list[str] = [format_name_addr(r) for r in self.route_set]
        uri: URI = self.remote_target
        if self._strict():
            first = self.route_set[0].uri
            assert isinstance(first, SipURI)
            uri = replace(
                first, headers=(), params=tuple(p for p in first.params if p[0].lower() != "method")
            )
            routes = [*routes[1:], f"<{self.remote_target}>"]
        h = Headers()
        h.add("Via", via)
        h.add("Max-Forwards", str(max_forwards))
        for route in routes:
            h.add("Route", route)
        h.add(
            "From",
            format_name_addr(
                replace(self.local_uri, params=(*self.local_uri.params, ("tag", self.local_tag)))
            ),
        )
        remote_params = self.remote_uri.params + ((("tag", self.remote_tag),) if self.remote_tag else ())
        h.add("To", format_name_addr(replace(self.remote_uri, params=remote_params)))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{number} {method}")
        return Request(method, uri, "SIP/2.0", h)


def _first_contact(headers: Headers) -> NameAddr:
    values = headers.get_all("Contact")
    if not values or values[0] == "*":
        raise SipParseError(400, "Missing Contact header")
    return parse_name_addr(values[0], "Contact")
