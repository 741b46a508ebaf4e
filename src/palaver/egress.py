"""Where the server may connect on a client's behalf: one egress policy, and the network code that keeps it.

A client of a Palaver server can make it connect somewhere: an ``mcp`` tool's ``server_url``
today, a relay upstream later. On a server that faces a network that is a way into whatever the
server can reach (loopback services, the private network, cloud metadata at 169.254.169.254), so
every such connection goes through an :class:`EgressPolicy`.

    policy = EgressPolicy.from_settings(settings)       # PALAVER_MCP_ALLOW, and whether we bind loopback
    policy.check_url("https://mcp.example.com/v1/mcp")  # the URL itself (scheme, prefix, IP literal)
    policy.check_connection("mcp.example.com", 443, addresses)   # every resolved address
    client = httpx2.AsyncClient(transport=EgressTransport(policy))   # both checks on every request

The rules. Only ``http`` and ``https``. With ``PALAVER_MCP_ALLOW`` unset, a server whose HTTP
port binds loopback only may connect anywhere (its clients are on this machine already); any
other server may connect to public addresses only: loopback, private (RFC 1918, ULA), link-local,
CGNAT, multicast, unspecified, reserved and other special-purpose addresses are refused, also
when written as IPv4-mapped, 6to4 or NAT64 IPv6 addresses. With ``PALAVER_MCP_ALLOW`` set, only
what it lists is allowed, replacing the default (public addresses are then not allowed unless
listed): URL prefixes (``https://mcp.example.com/v1/``: that scheme, host and port, and paths
under that one, whole segments), ``host[:port]`` (that name or address, on that port or any),
and CIDRs (``10.0.0.0/8``, ``fd00::/8``: any host name resolving only into them). A listed host
name is trusted whatever it resolves to; everything else is judged by its resolved addresses.

No DNS rebinding: :class:`EgressNetworkBackend` resolves the host itself where the TCP
connection is made, checks every address, and connects to a checked address (TLS still names
the original host, for SNI and certificate checks). Every request, redirects included, goes
through :class:`EgressTransport`, so each hop is checked; proxies from the environment are not
used (they would connect elsewhere than what was checked).

The pure part (:class:`EgressPolicy`, :func:`address_class`, :func:`safe_url`) opens no socket.
A refusal is :class:`EgressRefused`; callers translate it at their boundary.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2

from palaver.config import ConfigError, Settings, is_loopback_host
from palaver.errors import PalaverError
from palaver.redact import safe_url

__all__ = [
    "EgressNetworkBackend",
    "EgressPolicy",
    "EgressRefused",
    "EgressTransport",
    "IPAddress",
    "address_class",
]

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_ULA = ipaddress.IPv6Network("fc00::/7")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


class EgressRefused(PalaverError):
    """A connection the egress policy does not allow; nothing was sent.

    ``reason`` says which rule refused it ("10.0.0.5 is a private address"), ``hint`` how an
    operator allows it; ``str()`` is both.
    """

    def __init__(self, reason: str, hint: str) -> None:
        self.reason = reason
        self.hint = hint
        super().__init__(f"{reason}; {hint}" if hint else reason)


# --- addresses --------------------------------------------------------------------------


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), and how it is written."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible"
    return None


def _unscoped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    return ip


def address_class(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address ("a private address", ...), or None when it is one."""
    ip = _unscoped(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            inner, how = embedded
            kind = address_class(inner)
            if kind is not None:
                article = "an" if how.startswith("IPv4") else "a"
                return f"{article} {how} form of {inner}, {kind}"
            if how == "IPv4-compatible":  # deprecated (RFC 4291): never a real destination
                return "a reserved or special-purpose address"
            return None
        if ip in _NAT64_LOCAL:
            return "a reserved or special-purpose address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address):
        if any(ip in net for net in _RFC1918):
            return "a private address"
        if ip in _CGNAT:
            return "a shared (CGNAT) address"
    else:
        if ip in _ULA:
            return "a private (unique local) address"
        if ip in _SITE_LOCAL:
            return "a private (site-local) address"
    if not ip.is_global:
        return "a reserved or special-purpose address"
    return None


def _plain(ip: IPAddress) -> IPAddress:
    """``ip`` without its IPv6 scope, and as IPv4 when it is an IPv4-mapped address."""
    ip = _unscoped(ip)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _norm_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


# --- the policy -------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlPrefix:
    """``https://mcp.example.com/v1/``: that scheme, host and port; paths under that path."""

    scheme: str
    host: str
    port: int
    path: str

    def matches(self, scheme: str, host: str, port: int, path: str) -> bool:
        if (scheme, host, port) != (self.scheme, self.host, self.port):
            return False
        return _under(path or "/", self.path)


@dataclass(frozen=True)
class HostPort:
    """``mcp.internal`` or ``mcp.internal:8443`` (a name), or ``10.0.0.5:8080`` (an address)."""

    host: str
    port: int | None
    ip: IPAddress | None

    def matches_name(self, host: str, port: int) -> bool:
        return self.ip is None and self.host == host and self.port in (None, port)

    def matches_address(self, ip: IPAddress, port: int) -> bool:
        return self.ip is not None and self.ip == ip and self.port in (None, port)


@dataclass(frozen=True)
class Network:
    """``10.0.0.0/8``, ``fd00::/8``, or one bare address: any port."""

    network: IPNetwork

    def contains(self, ip: IPAddress) -> bool:
        return ip.version == self.network.version and ip in self.network


AllowEntry = UrlPrefix | HostPort | Network


def _under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or below it, by whole segments."""
    if path == prefix or prefix == "/":
        return True
    base = prefix if prefix.endswith("/") else prefix + "/"
    return path.startswith(base) or path == prefix.rstrip("/")


def parse_entry(raw: str, setting: str = "PALAVER_MCP_ALLOW") -> AllowEntry:
    """One entry of an allow list, or ``ConfigError`` naming it and saying what is wrong."""
    entry = raw.strip()
    try:
        if "://" in entry:
            return _parse_prefix(entry)
        if "/" in entry:
            return _parse_cidr(entry)
        return _parse_host_port(entry)
    except ValueError as exc:
        raise ConfigError(f"{setting}: entry {entry!r} {exc}") from None


def _parse_prefix(entry: str) -> UrlPrefix:
    try:
        parts = urlsplit(entry)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL prefix ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError("has a scheme other than http or https")
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("has userinfo (user:password@); give the host only")
    if parts.query or parts.fragment or entry.endswith(("?", "#")):
        raise ValueError("has a query or fragment; a URL prefix is scheme://host[:port]/path")
    host = _norm_host(parts.hostname)
    if _ip_literal(host) is None and not _HOST_NAME.match(host):
        raise ValueError("has an invalid host name")
    return UrlPrefix(scheme, host, port if port is not None else DEFAULT_PORTS[scheme], parts.path or "/")


def _parse_cidr(entry: str) -> Network:
    try:
        network = ipaddress.ip_network(entry, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"is not a valid CIDR ({exc})") from None
        raise ValueError(f"has host bits set; did you mean {loose}?") from None
    return Network(network)


def _parse_host_port(entry: str) -> Network | HostPort:
    literal = _ip_literal(entry) if not entry.startswith("[") else None
    if literal is not None:  # a bare address: that one address, any port
        return Network(ipaddress.ip_network(_plain(literal)))
    host, port_text = entry, None
    if entry.startswith("["):
        end = entry.find("]")
        if end < 0:
            raise ValueError("has an unclosed '['")
        host, rest = entry[1:end], entry[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("has text after ']' that is not ':port'")
        port_text = rest[1:] if rest else None
        if not isinstance(_ip_literal(host), ipaddress.IPv6Address):
            raise ValueError("has brackets around something that is not an IPv6 address")
    elif ":" in entry:
        host, port_text = entry.rsplit(":", 1)
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError("has a port that is not a number from 1 to 65535")
        port = int(port_text)
    host = _norm_host(host)
    ip = _ip_literal(host)
    if ip is None and not _HOST_NAME.match(host):
        raise ValueError("is not a URL prefix, host[:port] or CIDR")
    return HostPort(host, port, _plain(ip) if ip is not None else None)


@dataclass(frozen=True)
class EgressPolicy:
    """Where connections on a client's behalf may go.

    ``allow`` None: the default rule (``open``: anywhere; else public addresses only). A tuple:
    only what it lists. ``setting`` names the setting an operator changes (for messages).
    """

    allow: tuple[AllowEntry, ...] | None = None
    open: bool = False
    setting: str = "PALAVER_MCP_ALLOW"

    # --- building -------------------------------------------------------------------

    @classmethod
    def parse(cls, allow: str | None, *, loopback_only: bool, setting: str = "PALAVER_MCP_ALLOW") -> Self:
        """From the comma-separated allow list (None: unset) and whether the server binds loopback only."""
        if allow is None:
            return cls(None, open=loopback_only, setting=setting)
        pieces = [piece for piece in allow.split(",") if piece.strip()]
        if not pieces:
            raise ConfigError(f"{setting} lists no entry; unset it for the default rule")
        return cls(tuple(parse_entry(piece, setting) for piece in pieces), open=False, setting=setting)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The MCP policy from ``PALAVER_MCP_ALLOW`` and ``PALAVER_HOST`` (``ConfigError``: a bad entry)."""
        return cls.parse(settings.mcp_allow, loopback_only=is_loopback_host(settings.host))

    @classmethod
    def allow_all(cls) -> Self:
        """Any http(s) URL (the default of a loopback-only server)."""
        return cls(None, open=True)

    @classmethod
    def public_only(cls) -> Self:
        """Public addresses only (the default of a server that faces a network)."""
        return cls(None, open=False)

    def describe(self) -> str:
        """One line for the startup log."""
        if self.allow is not None:
            return f"MCP egress: only what {self.setting} lists ({len(self.allow)} entries)"
        if self.open:
            return "MCP egress: any http(s) URL (the HTTP server binds loopback only)"
        return f"MCP egress: public addresses only (allow others with {self.setting})"

    # --- deciding -------------------------------------------------------------------

    @property
    def _hint(self) -> str:
        if self.allow is None:
            return f"allow it with {self.setting}"
        return f"add it to {self.setting}"

    def check_url(self, url: str) -> None:
        """Refuse a URL that cannot be allowed whatever its host resolves to (``EgressRefused``).

        The scheme, an allow list's URL prefixes and host names, and IP-literal hosts are decided
        here; a host name that an allow list's CIDRs or the public rule must judge passes, to be
        judged by its resolved addresses in :meth:`check_connection`.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise EgressRefused(f"{safe_url(url)} is not a valid URL ({exc})", "") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise EgressRefused(f"the scheme {scheme or '(none)'!r} is not allowed", "use http or https")
        if not parts.hostname:
            raise EgressRefused(f"{safe_url(url)} has no host", "")
        if self.open:
            return
        host = _norm_host(parts.hostname)
        port = port if port is not None else DEFAULT_PORTS[scheme]
        literal = _ip_literal(host)
        if self.allow is None:
            if literal is not None:
                kind = address_class(literal)
                if kind is not None:
                    raise EgressRefused(f"{literal} is {kind}", self._hint)
            return
        if any(isinstance(e, UrlPrefix) and e.matches(scheme, host, port, parts.path) for e in self.allow):
            return
        if any(isinstance(e, HostPort) and e.matches_name(host, port) for e in self.allow):
            return
        if any(isinstance(e, UrlPrefix) and (e.host, e.port) == (host, port) for e in self.allow):
            # Its connections are trusted by name, so the path must be under a listed prefix.
            raise EgressRefused(
                f"{safe_url(url)} is outside the URL prefixes {self.setting} lists", self._hint
            )
        if literal is not None:
            if self._address_listed(_plain(literal), port):
                return
            raise EgressRefused(f"{literal} port {port} is not listed in {self.setting}", self._hint)
        if any(isinstance(e, Network) or (isinstance(e, HostPort) and e.ip is not None) for e in self.allow):
            return  # its resolved addresses decide
        raise EgressRefused(f"{host} port {port} is not listed in {self.setting}", self._hint)

    def check_connection(self, host: str, port: int, addresses: Sequence[IPAddress]) -> None:
        """Refuse a TCP connection to ``host:port`` resolved to ``addresses`` unless every one is allowed."""
        if self.open:
            return
        if not addresses:
            raise EgressRefused(f"{host} resolved to no address", "")
        name = _norm_host(host)
        if self.allow is not None and any(
            (isinstance(e, HostPort) and e.matches_name(name, port))
            or (isinstance(e, UrlPrefix) and (e.host, e.port) == (name, port))
            for e in self.allow
        ):
            return  # a listed name is trusted whatever it resolves to
        literal = _ip_literal(name) is not None
        for address in addresses:
            if self.allow is None:
                kind = address_class(address)
                if kind is not None:
                    where = str(address) if literal else f"{host} resolves to {address}, which"
                    raise EgressRefused(f"{where} is {kind}", self._hint)
            elif not self._address_listed(_plain(address), port):
                where = f"{address} port {port}" if literal else f"{host} resolves to {address}, which"
                raise EgressRefused(f"{where} is not listed in {self.setting}", self._hint)

    def _address_listed(self, ip: IPAddress, port: int) -> bool:
        assert self.allow is not None
        return any(
            (isinstance(e, Network) and e.contains(ip))
            or (isinstance(e, HostPort) and e.matches_address(ip, port))
            for e in self.allow
        )


# --- the network side -------------------------------------------------------------------


class EgressNetworkBackend(httpcore2.AsyncNetworkBackend):
    """An httpcore2 network backend that resolves, checks every address, and connects to a checked one.

    ``inner`` makes the connection to the address (default: httpcore2's anyio backend); the
    TLS handshake httpcore2 starts afterwards still names the original host.
    """

    def __init__(self, policy: EgressPolicy, inner: httpcore2.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self._inner = inner or httpcore2.AnyIOBackend()

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        """The addresses of ``host`` (itself when it is an address), in the resolver's order."""
        literal = _ip_literal(host)
        if literal is not None:
            return [literal]
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except TimeoutError:
            raise httpcore2.ConnectTimeout(f"resolving {host} took longer than {timeout:g} s") from None
        except OSError as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from None
        out: list[IPAddress] = []
        for family, *_rest, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = ipaddress.ip_address(str(sockaddr[0]))
            if ip not in out:
                out.append(ip)
        return out

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await self.resolve(host, port, timeout)
        self.policy.check_connection(host, port, addresses)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise EgressRefused("connections over unix sockets are not allowed", "")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class EgressTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport whose every request (each redirect hop too) is checked by the policy.

    The URL is checked before anything is sent (:meth:`EgressPolicy.check_url`), and every TCP
    connection through :class:`EgressNetworkBackend`. No proxy is used. ``on_refused`` hears
    every refusal before it is raised (a caller whose library folds exceptions into generic
    errors can still say why).
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        verify: ssl.SSLContext | bool = True,
        inner: httpcore2.AsyncNetworkBackend | None = None,
        on_refused: Callable[[EgressRefused], None] | None = None,
    ) -> None:
        self.policy = policy
        self._on_refused = on_refused
        self.backend = EgressNetworkBackend(policy, inner)
        self._http = httpx2.AsyncHTTPTransport(verify=verify, trust_env=False)
        # httpx2's transport takes no network backend: give it a pool that uses ours.
        self._http._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(verify=verify, trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=self.backend,
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            self.policy.check_url(str(request.url))
            return await self._http.handle_async_request(request)
        except EgressRefused as exc:
            if self._on_refused is not None:
                self._on_refused(exc)
            raise

    async def __aenter__(self) -> Self:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc_value, traceback)

    async def aclose(self) -> None:
        await self._http.aclose()
