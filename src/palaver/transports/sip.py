"""SIP over UDP, TCP and TLS on asyncio: the sockets around the sans-I/O UA core (RFC 3261 §18).

The UA core (``palaver.sip.ua``) never touches a socket or a clock.  This adapter owns the
listeners and connections, turns bytes into messages (``parse_message`` per datagram,
``StreamFramer`` per connection), hands each one to ``core.receive(message, peer, now)`` and then
*flushes*: it sends everything ``core.transmits()`` returns, re-arms its single loop timer at
``core.get_timer()`` and calls the application's ``on_events()`` so it can drain the core's
events.  The application calls ``flush()`` itself after it issues commands on the core.

Peer bytes never raise out of here: a malformed request gets the stateless 4xx/5xx the parser
chose when its Via, From, To, Call-ID and CSeq were readable, anything else is dropped, and every
failure is counted and logged at debug level.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from palaver.redact import pii
from palaver.sip.errors import SipParseError
from palaver.sip.message import Message
from palaver.sip.parser import StreamFramer, parse_message
from palaver.sip.peer import Peer, TransportName
from palaver.sip.status import response_for_error

__all__ = [
    "MAX_UDP_PAYLOAD",
    "SipCore",
    "SipTransport",
    "SipTransportConfig",
    "SipTransportStats",
]

log = logging.getLogger(__name__)

#: The largest UDP payload IPv4 can carry; a bigger message cannot go as one datagram.
MAX_UDP_PAYLOAD = 65507
_PONG = b"\r\n"
_BIND_ATTEMPTS = 20
_MAX_ADDRESSED = 8


class SipCore(Protocol):
    """What the adapter drives: the UA core (``palaver.sip.ua.UserAgent``) or a test double.

    ``now`` is always the event loop's clock (``loop.time()``), and so are the timer values.
    ``transport_error`` reports a stream connection that closed or failed: ``peer`` is the Peer
    messages on that connection arrived with (its ``connection`` set), or, for a connection this
    adapter opened that failed before it was up, each Peer the core had sent to on it.
    """

    def receive(self, message: Message, peer: Peer, now: float) -> None: ...

    def transport_error(self, peer: Peer, now: float) -> None: ...

    def transmits(self) -> list[tuple[Message, Peer]]: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


@dataclass(frozen=True)
class SipTransportConfig:
    """Where to listen and how to treat connections.

    ``port`` 0 binds an ephemeral port (tests): UDP and TCP then share one number.  ``tls_port``
    None means ``port + 1`` (ephemeral when ``port`` is 0); TLS listens only when both
    ``tls_cert`` and ``tls_key`` are set.  Outbound TLS (to a trunk) verifies the server's
    certificate and name against the system CAs, or ``tls_ca_file``, unless ``tls_verify`` is
    false.  ``advertise_host`` is the address put in Via/Contact when the bind address is a
    wildcard or not reachable by peers.
    """

    host: str = "127.0.0.1"
    port: int = 5060
    tls_port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_verify: bool = True
    tls_ca_file: str | None = None
    advertise_host: str | None = None
    udp: bool = True
    tcp: bool = True
    #: A connection with no traffic either way for this long is closed.
    idle_seconds: float = 600.0
    #: Opening an outbound connection (TCP connect plus TLS handshake) may take this long.
    connect_seconds: float = 10.0
    #: Inbound TLS handshake limit (a peer that connects and says nothing).
    handshake_seconds: float = 10.0
    #: Live stream connections, inbound and outbound together; more are refused.
    max_connections: int = 1024
    #: Bytes queued for a peer that does not read; beyond it the connection is dropped.
    max_write_buffer: int = 1 << 20

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert and self.tls_key)


@dataclass
class SipTransportStats:
    """Counters for logs and tests; everything that was not delivered is counted somewhere."""

    datagrams: int = 0
    messages: int = 0
    keepalives: int = 0
    malformed: int = 0
    malformed_answered: int = 0
    sent: int = 0
    send_failures: int = 0
    connections_accepted: int = 0
    connections_opened: int = 0
    connections_refused: int = 0
    connections_closed: int = 0
    core_errors: int = 0
    dropped_no_core: int = 0


@dataclass(eq=False)
class _Connection:
    """One TCP or TLS connection, inbound or opened by us."""

    id: int
    transport: TransportName
    host: str
    port: int
    outbound: bool
    framer: StreamFramer = field(default_factory=StreamFramer)
    stream: asyncio.Transport | None = None
    last_activity: float = 0.0
    idle: asyncio.TimerHandle | None = None
    pending: list[bytes] = field(default_factory=list)
    addressed: list[Peer] = field(default_factory=list)
    carried: bool = False
    closing: bool = False
    crlf_pairs: int = 0
    keepalives_seen: int = 0
    lost: asyncio.Future[None] | None = None

    @property
    def peer(self) -> Peer:
        return Peer(self.transport, self.host, self.port, self.id)

    @property
    def key(self) -> tuple[TransportName, str, int]:
        return (self.transport, self.host, self.port)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            self._owner._on_datagram(data, str(addr[0]), int(addr[1]))
        except Exception:  # never into the loop
            log.exception("SIP/UDP: unexpected failure on a datagram from %s", addr[:2])

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable ...) for earlier sends; asyncio cannot say which peer.
        log.debug("SIP/UDP: socket error %s", exc)


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, owner: SipTransport, conn: _Connection | None, transport_name: TransportName) -> None:
        self._owner = owner
        self._conn = conn
        self._name = transport_name

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not an asyncio.Transport instance under uvloop (which
        # uvicorn runs the server on): no isinstance check here.
        stream = cast(asyncio.Transport, transport)
        try:
            self._conn = self._owner._on_connection_made(self._conn, self._name, stream)
        except Exception:
            log.exception("SIP/%s: unexpected failure on a new connection", self._name.upper())
            stream.abort()

    def data_received(self, data: bytes) -> None:
        if self._conn is None:
            return
        try:
            self._owner._on_stream_data(self._conn, data)
        except Exception:
            log.exception("SIP/%s: unexpected failure on data from %s", self._name.upper(), self._conn.peer)
            self._owner._drop_connection(self._conn)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is None:
            return
        try:
            self._owner._on_connection_lost(self._conn, exc)
        except Exception:
            log.exception("SIP/%s: unexpected failure closing %s", self._name.upper(), self._conn.peer)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _default_route_address(family: socket.AddressFamily) -> str:
    """The local address the kernel would use towards the world (no packet is sent)."""
    probe, fallback = ("192.0.2.1", "127.0.0.1") if family == socket.AF_INET else ("2001:db8::1", "::1")
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))
            return str(s.getsockname()[0])
    except OSError:
        return fallback


class SipTransport:
    """The UDP, TCP and TLS listeners and connections of one SIP endpoint.

    ``transport = SipTransport(config, core, on_events)``; ``contacts = await transport.start()``
    (the bound addresses per transport, for the UA's Via and Contact); ``transport.flush()``
    after issuing commands on the core; ``await transport.close()``.  The core may also be given
    later with ``attach`` (the UA needs the bound ports to be built); until then messages are
    dropped.
    """

    def __init__(
        self,
        config: SipTransportConfig,
        core: SipCore | None = None,
        on_events: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.stats = SipTransportStats()
        self._core = core
        self._on_events = on_events
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._contacts: dict[TransportName, tuple[str, int]] = {}
        self._conns: dict[int, _Connection] = {}
        self._by_addr: dict[tuple[TransportName, str, int], _Connection] = {}
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._flushing = False
        self._flush_again = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._client_ctx: ssl.SSLContext | None = None
        self._started = False
        self._closed = False

    # ------------------------------------------------------------------ lifetime

    def attach(self, core: SipCore, on_events: Callable[[], None] | None = None) -> None:
        """Give the transport its core (and events callback) once the core could be built."""
        self._core = core
        if on_events is not None:
            self._on_events = on_events
        self.flush()

    @property
    def contacts(self) -> dict[TransportName, tuple[str, int]]:
        """Per transport, the (host, port) peers reach us at: for Via sent-by and Contact."""
        return dict(self._contacts)

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    async def start(self) -> dict[TransportName, tuple[str, int]]:
        """Bind the listeners; returns ``contacts``.  Raises OSError when a port is taken."""
        if self._started:
            raise RuntimeError("SipTransport already started")
        self._started = True
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        server_ctx = self._server_context() if cfg.tls_enabled else None
        host, family = await self._bind_address(cfg.host)
        tls_contact = ("", 0)
        try:
            port = await self._bind_udp_tcp(host, cfg.port)
            if server_ctx is not None:
                tls_port = cfg.tls_port
                if tls_port is None:
                    tls_port = cfg.port + 1 if cfg.port else 0
                server = await self._loop.create_server(
                    lambda: _StreamProtocol(self, None, "tls"),
                    host,
                    tls_port,
                    ssl=server_ctx,
                    ssl_handshake_timeout=cfg.handshake_seconds,
                )
                self._servers.append(server)
                tls_contact = (self._advertised(host, family), _server_port(server))
        except BaseException:
            await self.close()
            raise
        advertised = self._advertised(host, family)
        if port is not None and cfg.udp:
            self._contacts["udp"] = (advertised, port)
        if port is not None and cfg.tcp:
            self._contacts["tcp"] = (advertised, port)
        if server_ctx is not None:
            self._contacts["tls"] = tls_contact
        log.info("SIP listening on %s", ", ".join(f"{t} {h}:{p}" for t, (h, p) in self._contacts.items()))
        return self.contacts

    async def close(self) -> None:
        """Stop listening, close every connection, cancel the timer.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        waits: list[asyncio.Future[None]] = []
        for conn in list(self._conns.values()):
            if conn.idle is not None:
                conn.idle.cancel()
            if conn.stream is not None:
                if conn.lost is not None:
                    waits.append(conn.lost)
                conn.closing = True
                conn.stream.close()
        if waits:
            _, still = await asyncio.wait(waits, timeout=2.0)
            for conn in list(self._conns.values()):
                if conn.stream is not None and conn.lost in still:
                    conn.stream.abort()
            if still:
                await asyncio.wait(still, timeout=1.0)
        self._conns.clear()
        self._by_addr.clear()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._servers.clear()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        await asyncio.sleep(0)  # let the transports' close callbacks run

    async def _bind_address(self, host: str) -> tuple[str, socket.AddressFamily]:
        """One numeric address to bind, so ``localhost`` cannot become two sockets on two ports."""
        assert self._loop is not None
        infos = await self._loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
        if not infos:
            raise OSError(f"SIP bind host {host!r} does not resolve")
        family, _, _, _, sockaddr = infos[0]
        return str(sockaddr[0]), family

    async def _bind_udp_tcp(self, host: str, port: int) -> int | None:
        """UDP and TCP on one port; with port 0, retry until both get the same ephemeral one."""
        assert self._loop is not None
        cfg = self.config
        if not (cfg.udp or cfg.tcp):
            return None
        attempts = _BIND_ATTEMPTS if port == 0 else 1
        for attempt in range(attempts):
            server: asyncio.Server | None = None
            try:
                if cfg.tcp:
                    server = await self._loop.create_server(
                        lambda: _StreamProtocol(self, None, "tcp"), host, port, reuse_address=True
                    )
                    bound = _server_port(server)
                else:
                    bound = port
                if cfg.udp:
                    transport, _ = await self._loop.create_datagram_endpoint(
                        lambda: _UdpProtocol(self), local_addr=(host, bound)
                    )
                    # Typed as DatagramTransport (on 3.11 it is not an instance of it: no isinstance).
                    self._udp = transport
                    bound = int(transport.get_extra_info("sockname")[1])
            except OSError:
                if server is not None:
                    server.close()
                    await server.wait_closed()
                if attempt + 1 >= attempts:
                    raise
                continue
            if server is not None:
                self._servers.append(server)
            return bound
        return None  # pragma: no cover - the loop returns or raises

    def _advertised(self, host: str, family: socket.AddressFamily) -> str:
        if self.config.advertise_host:
            return self.config.advertise_host
        if ipaddress.ip_address(host).is_unspecified:
            return _default_route_address(family)
        return host

    def _server_context(self) -> ssl.SSLContext:
        cfg = self.config
        assert cfg.tls_cert and cfg.tls_key
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        return ctx

    def _client_context(self) -> ssl.SSLContext:
        if self._client_ctx is None:
            cfg = self.config
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg.tls_ca_file)
            if not cfg.tls_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._client_ctx = ctx
        return self._client_ctx

    # ------------------------------------------------------------------ the core

    def flush(self) -> None:
        """Send what the core wants sent, re-arm the timer, then let the application drain events.

        Re-entrant calls (the application issuing commands from ``on_events``) run one more
        round after the current one instead of recursing.
        """
        if self._core is None or self._loop is None or self._closed:
            return
        if self._flushing:
            self._flush_again = True
            return
        self._flushing = True
        try:
            for _ in range(100):
                self._flush_again = False
                self._flush_once(self._core)
                if not self._flush_again:
                    break
        finally:
            self._flushing = False

    def _flush_once(self, core: SipCore) -> None:
        try:
            transmits = core.transmits()
        except Exception:
            self.stats.core_errors += 1
            log.exception("SIP core failed in transmits()")
            transmits = []
        for message, peer in transmits:
            try:
                self._send(message, peer)
            except Exception:
                self.stats.send_failures += 1
                log.exception("SIP: failed to send to %s", peer)
        self._arm_timer(core)
        if self._on_events is not None:
            try:
                self._on_events()
            except Exception:
                log.exception("SIP: the on_events callback failed")

    def _arm_timer(self, core: SipCore) -> None:
        assert self._loop is not None
        try:
            when = core.get_timer()
        except Exception:
            self.stats.core_errors += 1
            log.exception("SIP core failed in get_timer()")
            when = None
        if when is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = self._timer_when = None
            return
        if self._timer is not None and self._timer_when == when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._on_timer)
        self._timer_when = when

    def _on_timer(self) -> None:
        self._timer = self._timer_when = None
        core, loop = self._core, self._loop
        if core is None or loop is None or self._closed:
            return
        try:
            core.handle_timer(loop.time())
        except Exception:
            self.stats.core_errors += 1
            log.exception("SIP core failed in handle_timer()")
        self.flush()

    def _deliver(self, message: Message, peer: Peer) -> None:
        core, loop = self._core, self._loop
        if core is None or loop is None:
            self.stats.dropped_no_core += 1
            log.debug("SIP: no core attached yet; dropped a message from %s", peer)
            return
        self.stats.messages += 1
        try:
            core.receive(message, peer, loop.time())
        except Exception:
            self.stats.core_errors += 1
            log.exception("SIP core failed on a message from %s", peer)
        self.flush()

    def _report_transport_error(self, peers: list[Peer]) -> None:
        core, loop = self._core, self._loop
        if core is None or loop is None or self._closed:
            return
        for peer in peers:
            try:
                core.transport_error(peer, loop.time())
            except Exception:
                self.stats.core_errors += 1
                log.exception("SIP core failed in transport_error(%s)", peer)
        self.flush()

    def _later_transport_error(self, peers: list[Peer]) -> None:
        """Report outside the current flush, so the core is never re-entered mid-drain."""
        if self._loop is not None and peers:
            self._loop.call_soon(self._report_transport_error, peers)

    def _malformed(self, exc: SipParseError, peer: Peer, answer: Callable[[bytes], None]) -> None:
        self.stats.malformed += 1
        response = response_for_error(exc) if not exc.is_response else None
        if response is None:
            log.debug(
                "SIP: dropped malformed %s from %s: %d %s",
                "response" if exc.is_response else "message",
                peer,
                exc.status,
                pii(exc.reason),  # the reason quotes the peer's header text
            )
            return
        try:
            data = response.to_bytes()
        except ValueError:
            log.debug(
                "SIP: cannot answer malformed request from %s: %d %s", peer, exc.status, pii(exc.reason)
            )
            return
        log.debug("SIP: answered malformed request from %s with %d %s", peer, exc.status, pii(exc.reason))
        self.stats.malformed_answered += 1
        answer(data)

    # ------------------------------------------------------------------ UDP

    def _on_datagram(self, data: bytes, host: str, port: int) -> None:
        self.stats.datagrams += 1
        if not data.strip(b"\r\n\t "):
            self.stats.keepalives += 1
            return
        peer = Peer("udp", host, port)
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self._malformed(exc, peer, lambda out: self._sendto(out, host, port))
            return
        self._deliver(message, peer)

    def _sendto(self, data: bytes, host: str, port: int) -> None:
        if self._udp is None or self._udp.is_closing():
            return
        try:
            self._udp.sendto(data, (host, port))
        except (OSError, ValueError, TypeError) as exc:
            self.stats.send_failures += 1
            log.debug("SIP/UDP: send to %s:%s failed: %s", host, port, exc)
            return
        self.stats.sent += 1

    def _send_udp(self, data: bytes, peer: Peer) -> None:
        if self._udp is None:
            self.stats.send_failures += 1
            log.warning("SIP: cannot send to %s: UDP is not enabled", peer)
            return
        if len(data) > MAX_UDP_PAYLOAD:
            self.stats.send_failures += 1
            log.warning("SIP/UDP: %d-byte message to %s does not fit a datagram; dropped", len(data), peer)
            return
        if _is_ip_literal(peer.host):
            self._sendto(data, peer.host, peer.port)
        else:
            self._spawn(self._resolve_and_send(data, peer))

    async def _resolve_and_send(self, data: bytes, peer: Peer) -> None:
        assert self._loop is not None and self._udp is not None
        family = self._udp.get_extra_info("socket").family
        try:
            infos = await self._loop.getaddrinfo(peer.host, peer.port, family=family, type=socket.SOCK_DGRAM)
        except OSError as exc:
            self.stats.send_failures += 1
            log.info("SIP/UDP: %s does not resolve: %s", peer.host, exc)
            return
        if infos:
            self._sendto(data, str(infos[0][4][0]), peer.port)

    # ------------------------------------------------------------------ TCP and TLS

    def _send(self, message: Message, peer: Peer) -> None:
        try:
            data = message.to_bytes()
        except ValueError as exc:
            self.stats.send_failures += 1
            log.warning("SIP: cannot serialise a message for %s: %s", peer, exc)
            return
        if peer.transport == "udp":
            self._send_udp(data, peer)
        else:
            self._send_stream(data, peer)

    def _send_stream(self, data: bytes, peer: Peer) -> None:
        conn = self._conns.get(peer.connection) if peer.connection is not None else None
        if conn is not None and (conn.closing or conn.transport != peer.transport):
            conn = None
        if conn is None:
            conn = self._by_addr.get((peer.transport, peer.host, peer.port))
            if conn is not None and conn.closing:
                conn = None
        if conn is None:
            conn = self._open(peer)
            if conn is None:
                self.stats.send_failures += 1
                self._later_transport_error([peer])
                return
        if peer != conn.peer and peer not in conn.addressed and len(conn.addressed) < _MAX_ADDRESSED:
            conn.addressed.append(peer)
        if conn.stream is None:
            conn.pending.append(data)
            return
        self._write(conn, data)

    def _write(self, conn: _Connection, data: bytes) -> None:
        stream = conn.stream
        if stream is None or stream.is_closing():
            self.stats.send_failures += 1
            return
        assert self._loop is not None
        stream.write(data)
        self.stats.sent += 1
        conn.last_activity = self._loop.time()
        if stream.get_write_buffer_size() > self.config.max_write_buffer:
            log.info("SIP: %s does not read what we send; closing the connection", conn.peer)
            self._drop_connection(conn, abort=True)

    def _open(self, peer: Peer) -> _Connection | None:
        """Start an outbound connection; messages queue on it until it is up."""
        assert self._loop is not None
        cfg = self.config
        if self._closed:
            return None
        if peer.transport == "tcp" and not cfg.tcp:
            log.warning("SIP: cannot send to %s: TCP is not enabled", peer)
            return None
        if len(self._conns) >= cfg.max_connections:
            self.stats.connections_refused += 1
            log.warning("SIP: %d connections open; not opening another to %s", len(self._conns), peer)
            return None
        conn = _Connection(next(self._ids), peer.transport, peer.host, peer.port, outbound=True)
        conn.lost = self._loop.create_future()
        self._conns[conn.id] = conn
        self._by_addr[conn.key] = conn
        self._spawn(self._connect(conn))
        return conn

    async def _connect(self, conn: _Connection) -> None:
        assert self._loop is not None
        cfg = self.config
        tls = conn.transport == "tls"
        try:
            await asyncio.wait_for(
                self._loop.create_connection(
                    lambda: _StreamProtocol(self, conn, conn.transport),
                    conn.host,
                    conn.port,
                    ssl=self._client_context() if tls else None,
                    server_hostname=conn.host if tls else None,
                ),
                cfg.connect_seconds,
            )
        except asyncio.CancelledError:
            self._forget(conn)
            raise
        except (TimeoutError, OSError, ssl.SSLError, ValueError) as exc:
            log.info("SIP: could not connect to %s %s:%s: %s", conn.transport, conn.host, conn.port, exc)
            self._forget(conn)
            self.stats.send_failures += len(conn.pending)
            conn.pending.clear()
            self._report_transport_error(conn.addressed or [conn.peer])

    def _forget(self, conn: _Connection) -> None:
        conn.closing = True
        if conn.idle is not None:
            conn.idle.cancel()
            conn.idle = None
        self._conns.pop(conn.id, None)
        if self._by_addr.get(conn.key) is conn:
            del self._by_addr[conn.key]
        if conn.lost is not None and not conn.lost.done():
            conn.lost.set_result(None)

    def _on_connection_made(
        self, conn: _Connection | None, name: TransportName, stream: asyncio.Transport
    ) -> _Connection | None:
        assert self._loop is not None
        now = self._loop.time()
        if conn is None:  # accepted
            if self._closed or len(self._conns) >= self.config.max_connections:
                self.stats.connections_refused += 1
                log.warning("SIP/%s: connection limit reached; refusing a connection", name.upper())
                stream.abort()
                return None
            addr = stream.get_extra_info("peername")
            conn = _Connection(next(self._ids), name, str(addr[0]), int(addr[1]), outbound=False)
            conn.lost = self._loop.create_future()
            self._conns[conn.id] = conn
            self._by_addr[conn.key] = conn
            self.stats.connections_accepted += 1
            log.debug(
                "SIP/%s: accepted connection %d from %s:%s", name.upper(), conn.id, conn.host, conn.port
            )
        else:
            if conn.closing or self._closed:
                stream.abort()
                return conn
            self.stats.connections_opened += 1
            log.debug("SIP/%s: connection %d to %s:%s up", name.upper(), conn.id, conn.host, conn.port)
        conn.stream = stream
        conn.last_activity = now
        self._arm_idle(conn)
        pending, conn.pending = conn.pending, []
        for data in pending:
            self._write(conn, data)
        return conn

    def _arm_idle(self, conn: _Connection) -> None:
        assert self._loop is not None
        if conn.idle is not None:
            conn.idle.cancel()
        conn.idle = self._loop.call_at(conn.last_activity + self.config.idle_seconds, self._check_idle, conn)

    def _check_idle(self, conn: _Connection) -> None:
        assert self._loop is not None
        conn.idle = None
        if conn.closing or conn.stream is None:
            return
        if self._loop.time() - conn.last_activity >= self.config.idle_seconds:
            log.debug("SIP: closing idle connection %s", conn.peer)
            self._drop_connection(conn)
        else:
            self._arm_idle(conn)

    def _on_stream_data(self, conn: _Connection, data: bytes) -> None:
        assert self._loop is not None
        if conn.closing:
            return
        conn.last_activity = self._loop.time()
        items = conn.framer.feed(data)
        peer = conn.peer
        for item in items:
            if isinstance(item, SipParseError):
                self._malformed(item, peer, lambda out: self._write(conn, out))
            else:
                conn.carried = True
                self._deliver(item, peer)
            if conn.closing:
                return
        if conn.framer.broken:
            log.debug("SIP: framing lost on %s; closing the connection", peer)
            self._drop_connection(conn)
            return
        self._answer_pings(conn, bool(items))

    def _answer_pings(self, conn: _Connection, saw_messages: bool) -> None:
        """RFC 5626 §3.5.1: a double-CRLF ping gets a single-CRLF pong.

        A lone CRLF (a pong, or padding before a message) is carried over to the next bytes and
        forgotten once a message arrives.
        """
        new = conn.framer.keepalives - conn.keepalives_seen
        conn.keepalives_seen = conn.framer.keepalives
        self.stats.keepalives += new
        pairs = conn.crlf_pairs + new
        for _ in range(pairs // 2):
            if conn.stream is not None and not conn.stream.is_closing():
                conn.stream.write(_PONG)
        conn.crlf_pairs = 0 if saw_messages else pairs % 2

    def _drop_connection(self, conn: _Connection, *, abort: bool = False) -> None:
        """Close a connection ourselves; ``connection_lost`` then tells the core."""
        if conn.closing:
            return
        conn.closing = True
        if conn.idle is not None:
            conn.idle.cancel()
            conn.idle = None
        if self._by_addr.get(conn.key) is conn:
            del self._by_addr[conn.key]
        if conn.stream is not None:
            if abort:
                conn.stream.abort()
            else:
                conn.stream.close()

    def _on_connection_lost(self, conn: _Connection, exc: Exception | None) -> None:
        log.debug("SIP: connection %s closed (%s)", conn.peer, exc or "clean")
        was_closed = self._closed
        self._forget(conn)
        self.stats.connections_closed += 1
        if not was_closed:
            self._report_transport_error([conn.peer, *conn.addressed])

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SIP transport task failed", exc_info=task.exception())


def _server_port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])
