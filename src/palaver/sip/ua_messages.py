"""Message plumbing for the UA core: where responses go (§18.2), our Via and Contact, capabilities.

Kept apart from ``ua.py`` so the call logic there reads as call logic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .headers import MediaType, Via, parse_content_type, parse_token_list, parse_via
from .message import Headers, Request
from .peer import Peer, TransportName
from .uri import SipURI, TelURI

__all__ = [
    "ACCEPT",
    "ALLOW",
    "KNOWN_UNSUPPORTED",
    "SUPPORTED",
    "Problem",
    "capabilities",
    "contact_uri",
    "default_port",
    "media_type",
    "request_problem",
    "response_peer",
    "sipfrag_status",
    "stamp_via",
    "unsupported_requires",
]

ALLOW = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "NOTIFY")
"""Methods we accept (REFER only goes out: we transfer, we are not transferred)."""
KNOWN_UNSUPPORTED = frozenset({"REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "PRACK", "REFER"})
"""Methods we recognise and refuse with 405; any other unknown method gets 501 (§21.5.2)."""
SUPPORTED: tuple[str, ...] = ()
"""Option tags we support (none: no 100rel, timer, replaces); the header is left out while empty."""
ACCEPT = "application/sdp"


def default_port(transport: TransportName) -> int:
    return 5061 if transport == "tls" else 5060


def stamp_via(request: Request, peer: Peer) -> Request:
    """§18.2.1 and RFC 3581: add ``received`` (source address) and fill ``rport`` on the top Via.

    Returns a new Request; the caller's object is left alone.
    """
    via = parse_via(request.headers.get_all("Via")[0])
    params = [(k, v) for k, v in via.params if k.lower() not in ("received", "rport")]
    source = peer.host.strip("[]")
    if via.has_rport:
        params.append(("rport", str(peer.port)))
    if via.has_rport or via.host.strip("[]").lower() != source.lower():
        params.append(("received", source))
    new_top = str(replace(via, params=tuple(params)))
    headers = Headers()
    first = True
    for name, value in request.headers:
        if name == "Via" and first:
            first = False
            values = Headers([("Via", value)]).get_all("Via")
            value = ", ".join([new_top, *values[1:]])
        headers.add(name, value)
    return replace(request, headers=headers)


def response_peer(request: Request, peer: Peer) -> Peer:
    """Where responses to ``request`` from ``peer`` go (§18.2.2, RFC 3581 §4).

    Stream transports: back on the same connection, or (when it is gone) a new
    one to the source address at the Via's sent-by port.  UDP: ``maddr`` if
    present; with ``rport`` the source address and port; else the source
    address at the sent-by port.
    """
    via: Via = parse_via(request.headers.get_all("Via")[0])
    port = via.port or default_port(peer.transport)
    if peer.reliable:
        return Peer(peer.transport, peer.host, port, peer.connection)
    if via.maddr:
        return Peer("udp", via.maddr, port)
    if via.has_rport:
        return Peer("udp", peer.host, peer.port)
    return Peer("udp", peer.host, port)


def contact_uri(host: str, port: int, transport: TransportName, *, secure: bool, user: str | None) -> str:
    """Our Contact address for ``transport``: ``sips:`` for a secure dialog on TLS, else ``sip:``.

    The ``transport`` parameter is added for TCP and for TLS with ``sip:``.
    """
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "sips" if secure and transport == "tls" else "sip"
    param = "" if transport == "udp" or scheme == "sips" else f";transport={transport}"
    userinfo = f"{user}@" if user else ""
    return f"<{scheme}:{userinfo}{host}:{port}{param}>"


def capabilities(headers: Headers, *, accept: bool = False) -> None:
    """Allow (and Supported, Accept) as §11.2 and §20 want them on 2xx, 405 and OPTIONS answers."""
    headers.set("Allow", ", ".join(ALLOW))
    if SUPPORTED:
        headers.set("Supported", ", ".join(SUPPORTED))
    if accept:
        headers.set("Accept", ACCEPT)


def unsupported_requires(request: Request) -> tuple[str, ...]:
    """Require option tags we do not support (§8.2.2.3); never checked on ACK or CANCEL."""
    if request.method in ("ACK", "CANCEL"):
        return ()
    return tuple(tag for tag in parse_token_list(request.headers, "Require") if tag.lower() not in SUPPORTED)


def media_type(request: Request) -> MediaType | None:
    value = request.headers.get("Content-Type")
    return parse_content_type(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a request is refused: the status, an optional reason and headers to add."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def request_problem(request: Request, *, in_dialog: bool) -> Problem | None:
    """The §8.2.1-§8.2.3 checks a UAS makes before acting on a request, in the RFC's order.

    Method (405 for one we know but do not take, 501 for one we do not
    know; the caller adds Allow), Request-URI scheme (416), Require (420
    with Unsupported), and for INVITE and UPDATE the body (415 unless SDP
    without encoding; 406 when Accept rules SDP out).  An INVITE without
    Contact is taken (RFC 2543 compatibility: the From URI is the remote
    target); one with ``Contact: *`` gets 400.
    """
    method = request.method
    if method not in ALLOW:
        return Problem(405 if method in KNOWN_UNSUPPORTED else 501)
    if not isinstance(request.uri, SipURI | TelURI):
        return Problem(416)
    unsupported = unsupported_requires(request)
    if unsupported:
        return Problem(420, headers=(("Unsupported", ", ".join(unsupported)),))
    if method not in ("INVITE", "UPDATE"):
        return None
    if request.body:
        ctype = media_type(request)
        encodings = [e.lower() for e in parse_token_list(request.headers, "Content-Encoding")]
        if ctype is None or ctype.mime != ACCEPT or any(e != "identity" for e in encodings):
            return Problem(415, headers=(("Accept", ACCEPT), ("Accept-Encoding", "identity")))
    accept = request.headers.get_all("Accept")
    if accept and not {a.partition(";")[0].strip().lower() for a in accept} & {
        ACCEPT,
        "application/*",
        "*/*",
    }:
        return Problem(406)
    if method == "INVITE" and request.headers.get("Contact") == "*":
        return Problem(400, "Contact '*' in an INVITE")
    return None


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a message/sipfrag body's status line (RFC 3420), or None."""
    line = body.split(b"\n", 1)[0].strip().decode("ascii", "replace")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].upper().startswith("SIP/") or len(parts[1]) != 3:
        return None
    code = parts[1]
    if not code.isdigit() or not 100 <= int(code) <= 699:
        return None
    return int(code)
