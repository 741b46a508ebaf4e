"""RTP/RTCP endpoints on asyncio, paced by one shared media clock per event loop.

:class:`RtpEndpoint` owns a UDP socket pair (RTP on an even port, RTCP on the next) for one
call and drives a pure :class:`~palaver.rtp.stream.MediaStream`. The RTP socket is *polled* in
the endpoint's tick (every queued datagram, non-blocking) rather than watched with
``add_reader``: at 50 packets/s per call that saves an epoll wake-up and a loop callback per
packet (~10-15 % of the media CPU in ``bench/rtp_pacing.py``) for at most 20 ms more
latency, which the 60 ms jitter buffer absorbs. RTCP (rare) is read with ``add_reader``.
Packets are written with a direct non-blocking ``sendto``: no asyncio transports, no futures.

Pacing: a :class:`MediaClock` wakes every ``20 ms / phases`` on an absolute grid
(``origin + k × step`` with ``loop.call_at``, so drift never accumulates) and runs the
endpoints assigned to that phase: all their sends first, then their receive side (jitter
buffer → ``on_audio``, inactivity, RTCP). One timer serves every call of the process, and
spreading calls over phases bounds how long the last endpoint of a tick waits behind the
others. Each packet's send time minus its slot time is recorded (``stats().send_jitter_ms``).

The receive side is the heavy part on a phone line (``on_audio`` feeds a session: decoding,
resampling, VAD), so it runs as its own loop callback after the sends and gives the loop
back as soon as the next tick falls due (or after ``receive_slice`` seconds), resuming in a
later callback: the next phase's sends wait for one endpoint's receive work at most, not for
a whole phase of sessions. Under overload the receive side falls behind before the sends do;
a phase whose previous receive pass has not finished is not started again
(``receive_skips``): that pass reaches its endpoints, which then catch up on what was queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar

from palaver.rtp.rtcp import RemoteReport
from palaver.rtp.srtp import SrtpParams
from palaver.rtp.stream import FRAME_SECONDS, Address, Encoding, MediaStream, StreamConfig, StreamStats
from palaver.sdp import Direction

__all__ = ["MediaClock", "RtpEndpoint", "RtpStats"]

log = logging.getLogger(__name__)

_READ_BATCH = 64
_RECV_SIZE = 2048
#: At most this many seconds of receive-side work per loop callback (see the module docstring).
RECEIVE_SLICE_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class RtpStats:
    """A snapshot of one endpoint's counters."""

    sent: int
    """RTP packets sent (audio, silence, DTMF)."""
    received: int
    """RTP packets accepted from the peer."""
    lost: int
    """Packets the peer sent that never arrived (RFC 3550 A.3, may be negative with duplicates)."""
    non_rtp_dropped: int
    """STUN/DTLS/garbage datagrams dropped."""
    send_jitter_ms: tuple[float, ...]
    """Send time minus slot time (ms) of the most recent packets, oldest first."""
    jitter_ms: float
    """Interarrival jitter of what we receive (RFC 3550 A.8)."""
    latched: Address | None
    stream: StreamStats
    remote: RemoteReport
    """The peer's RTCP reports about what we send."""
    srtp_auth_failures: int = 0


class MediaClock:
    """One absolute 20 ms tick grid per event loop, shared by every endpoint.

    The grid has ``phases`` sub-ticks per period; an endpoint joins the least loaded phase and
    is ticked at ``origin + phase × step + n × period``. A late wake-up does not shift the
    grid: the next wake is the next grid time, and endpoints catch up on their own slots
    (at most a couple of packets at once, see :meth:`MediaStream.due_packets`).
    """

    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaClock]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        phases: int = 4,
        period: float = FRAME_SECONDS,
        receive_slice: float = RECEIVE_SLICE_SECONDS,
    ):
        if phases < 1:
            raise ValueError("phases must be >= 1")
        self.loop = loop
        self.period = period
        self.phases = phases
        self.step = period / phases
        self.receive_slice = receive_slice
        self._members: list[list[RtpEndpoint]] = [[] for _ in range(phases)]
        self._receiving = [False] * phases  # a phase's receive pass is still under way
        self._origin = 0.0
        self._k = 0
        self._handle: asyncio.TimerHandle | None = None
        self._next = 0.0  # when the next tick is due
        self.ticks = 0
        self.late_wakeups = 0
        """Wake-ups more than one step after their grid time."""
        self.tick_seconds = 0.0
        """CPU-side wall time spent inside ticks and receive slices (for benchmarks)."""
        self.receive_skips = 0
        """Phase ticks whose receive pass was not started: the previous one was still under way."""

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop | None = None) -> MediaClock:
        loop = loop or asyncio.get_running_loop()
        clock = cls._by_loop.get(loop)
        if clock is None:
            clock = cls._by_loop[loop] = cls(loop)
        return clock

    def __len__(self) -> int:
        return sum(len(m) for m in self._members)

    def add(self, ep: RtpEndpoint) -> float:
        """Register ``ep``; returns the time of its first slot (on its phase of the grid)."""
        now = self.loop.time()
        if self._handle is None:
            self._origin = self._next = now
            self._k = 0
            self._handle = self.loop.call_at(now, self._fire)
        phase = min(range(self.phases), key=lambda p: len(self._members[p]))
        self._members[phase].append(ep)
        # The first grid time of that phase not before now.
        base = self._origin + phase * self.step
        n = max(0, -int(-(now - base) // self.period))
        return base + n * self.period

    def remove(self, ep: RtpEndpoint) -> None:
        for members in self._members:
            if ep in members:
                members.remove(ep)
        if not len(self) and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        t0 = time.perf_counter()
        loop = self.loop
        now = loop.time()
        k = self._k
        phase = k % self.phases
        members = self._members[phase]
        if members:
            eps = tuple(members)
            for ep in eps:
                ep._send_tick()
            if self._receiving[phase]:
                self.receive_skips += 1
            else:
                self._receiving[phase] = True
                loop.call_soon(self._receive, phase, eps, 0)
        self.ticks += 1
        k += 1
        when = self._origin + k * self.step
        if when < now - self.step:
            self.late_wakeups += 1
            k = int((now - self._origin) / self.step) + 1
            when = self._origin + k * self.step
        self._k = k
        if len(self):
            self._handle = loop.call_at(when, self._fire)
            self._next = when
        else:
            self._handle = None
        self.tick_seconds += time.perf_counter() - t0

    def _receive(self, phase: int, eps: tuple[RtpEndpoint, ...], start: int) -> None:
        """The receive side of ``eps[start:]`` until the next tick is due (or ``receive_slice``
        seconds have passed), then the rest in a later callback."""
        t0 = time.perf_counter()
        loop = self.loop
        now, wallclock = loop.time(), time.time()
        until = min(self._next, now + self.receive_slice)
        i = start
        try:
            while i < len(eps):
                ep = eps[i]
                i += 1
                ep._receive_tick(now, wallclock)
                if loop.time() >= until:
                    break
        finally:
            if i < len(eps):
                self.loop.call_soon(self._receive, phase, eps, i)
            else:
                self._receiving[phase] = False
            self.tick_seconds += time.perf_counter() - t0


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET


def _bind_pair(host: str, lo: int, hi: int, rng: random.Random) -> tuple[socket.socket, socket.socket]:
    first = lo + (lo & 1)
    pairs = max(0, (hi - 1 - first) // 2 + 1)  # RTP at first, first+2, ...; RTCP at +1 <= hi
    if pairs == 0:
        raise OSError(f"port range {lo}-{hi} holds no even/odd port pair")
    family = _family(host)
    start = rng.randrange(pairs)
    last: OSError | None = None
    for i in range(pairs):
        port = first + 2 * ((start + i) % pairs)
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        rtcp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, port))
            rtcp.bind((host, port + 1))
        except OSError as exc:
            rtp.close()
            rtcp.close()
            last = exc
            continue
        rtp.setblocking(False)
        rtcp.setblocking(False)
        return rtp, rtcp
    raise OSError(f"no free RTP/RTCP port pair in {lo}-{hi} on {host}: {last}")


@dataclass(slots=True)
class _Callbacks:
    on_audio: Callable[[bytes], None] | None = None
    on_dtmf: Callable[[str], None] | None = None
    on_inactive: Callable[[], None] | None = None


@dataclass(eq=False)
class RtpEndpoint:
    """One call's media: open, ``start`` with the negotiated parameters, ``play``, ``close``."""

    loop: asyncio.AbstractEventLoop
    rtp_socket: socket.socket
    rtcp_socket: socket.socket
    clock: MediaClock
    host: str
    local_port: int
    send_jitter_window: int = 3000
    on_started: Callable[[str], None] | None = None
    """Called with the tag when the first packet of a run of that tag went out."""
    on_stopped: Callable[[str], None] | None = None
    """Called with the tag when its run ended: the queue drained or another tag began (not on clear)."""
    stream: MediaStream | None = None
    closed: bool = False
    _callbacks: _Callbacks = field(default_factory=_Callbacks)
    _deviation: deque[float] = field(init=False)
    _registered: bool = False

    def __post_init__(self) -> None:
        self._deviation = deque(maxlen=self.send_jitter_window)

    @classmethod
    async def open(
        cls,
        host: str = "127.0.0.1",
        port_range: tuple[int, int] = (10000, 20000),
        *,
        clock: MediaClock | None = None,
    ) -> RtpEndpoint:
        """Bind RTP on a free even port of ``port_range`` and RTCP on the next one."""
        loop = asyncio.get_running_loop()
        rtp, rtcp = _bind_pair(host, port_range[0], port_range[1], random.Random())
        ep = cls(
            loop=loop,
            rtp_socket=rtp,
            rtcp_socket=rtcp,
            clock=clock if clock is not None else MediaClock.for_loop(loop),  # an empty clock is falsy
            host=host,
            local_port=rtp.getsockname()[1],
        )
        loop.add_reader(rtcp, ep._readable, rtcp, True)
        return ep

    @property
    def local_rtcp_port(self) -> int:
        return self.local_port + 1

    def start(
        self,
        remote: Address,
        payload_type: int,
        encoding: Encoding,
        telephone_event: int | None = None,
        srtp: SrtpParams | None = None,
        on_audio: Callable[[bytes], None] | None = None,
        on_dtmf: Callable[[str], None] | None = None,
        on_inactive: Callable[[], None] | None = None,
        inactivity_seconds: float | None = 30.0,
        *,
        direction: Direction = "sendrecv",
        remote_rtcp: Address | None = None,
        jitter_delay_ms: int = 60,
        rtcp_interval: float = 5.0,
    ) -> None:
        """Begin (or, on a re-INVITE, update) the media. The send side keeps one continuous
        stream across updates; callbacks given as ``None`` keep their previous value."""
        if self.closed:
            raise RuntimeError("RTP endpoint is closed")
        config = StreamConfig(
            payload_type=payload_type,
            encoding=encoding,
            remote=(remote[0], remote[1]),
            remote_rtcp=remote_rtcp,
            telephone_event=telephone_event,
            srtp=srtp,
            direction=direction,
            inactivity_seconds=inactivity_seconds,
            jitter_delay_ms=jitter_delay_ms,
        )
        cb = self._callbacks
        cb.on_audio = on_audio or cb.on_audio
        cb.on_dtmf = on_dtmf or cb.on_dtmf
        cb.on_inactive = on_inactive or cb.on_inactive
        now = self.loop.time()
        if self.stream is None:
            self.stream = MediaStream(config, now, cname=f"palaver@{self.host}", rtcp_interval=rtcp_interval)
        else:
            self.stream.update(config, now)
        s = self.stream
        s.on_audio = cb.on_audio
        s.on_dtmf = cb.on_dtmf
        s.on_started = self._started
        s.on_stopped = self._stopped
        if not self._registered:
            s.anchor = self.clock.add(self)
            self._registered = True

    def _started(self, tag: str) -> None:
        if self.on_started is not None:
            self.on_started(tag)

    def _stopped(self, tag: str) -> None:
        if self.on_stopped is not None:
            self.on_stopped(tag)

    def _require(self) -> MediaStream:
        if self.stream is None:
            raise RuntimeError("RTP endpoint not started")
        return self.stream

    def play(self, g711: bytes, tag: str) -> None:
        """Queue G.711 audio (the negotiated law) for paced sending."""
        self._require().play(g711, tag)

    def clear(self) -> None:
        """Drop queued audio at once (barge-in); the next slot sends silence."""
        if self.stream is not None:
            self.stream.clear()

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        """Queue an RFC 4733 key press; audio pauses while it is sent."""
        self._require().send_dtmf(digit, duration_ms)

    @property
    def queued_ms(self) -> int:
        return len(self.stream.queue) // 8 if self.stream is not None else 0

    def played_ms(self, tag: str) -> int:
        """Milliseconds of ``tag`` sent so far."""
        return self.stream.played_ms(tag) if self.stream is not None else 0

    def stats(self) -> RtpStats:
        s = self.stream
        if s is None:
            return RtpStats(0, 0, 0, 0, (), 0.0, None, StreamStats(), RemoteReport())
        rec = s.rtcp.reception
        return RtpStats(
            sent=s.stats.sent,
            received=s.stats.received,
            lost=rec.lost,
            non_rtp_dropped=s.stats.non_rtp_dropped,
            send_jitter_ms=tuple(self._deviation),
            jitter_ms=rec.jitter * 1000 / rec.clock_rate,
            latched=s.latched,
            stream=replace(s.stats),
            remote=replace(s.rtcp.remote),
            srtp_auth_failures=s.srtp.stats.auth_failures if s.srtp is not None else 0,
        )

    # ------------------------------------------------------------------ I/O

    def _readable(
        self, sock: socket.socket, rtcp: bool, now: float | None = None, wallclock: float | None = None
    ) -> None:
        s = self.stream
        now = self.loop.time() if now is None else now
        wallclock = time.time() if wallclock is None else wallclock
        for _ in range(_READ_BATCH):
            try:
                data, addr = sock.recvfrom(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. an ICMP error queued on the socket
                continue
            if s is None:
                continue  # not started: nothing negotiated yet
            source = (addr[0], addr[1])
            if rtcp:
                s.rtcp_datagram(data, source, now, wallclock)
            else:
                s.datagram(data, source, now, wallclock)

    def _send(self, sock: socket.socket, data: bytes, target: Address) -> bool:
        try:
            sock.sendto(data, target)
        except (BlockingIOError, InterruptedError, OSError):
            if self.stream is not None:
                self.stream.stats.send_errors += 1
            return False
        return True

    def _send_tick(self) -> None:
        s = self.stream
        if s is None or self.closed:
            return
        try:
            packets = s.due_packets(self.loop.time())
            if packets:
                target = s.send_target
                sock = self.rtp_socket
                record = self._deviation.append
                for data, at in packets:
                    record((time.monotonic() - at) * 1000.0)
                    self._send(sock, data, target)
            if s.events:
                s.flush_events()
        except Exception:
            log.exception("RTP send tick failed (port %d)", self.local_port)

    def _receive_tick(self, now: float, wallclock: float) -> None:
        s = self.stream
        if s is None or self.closed:
            return
        try:
            self._readable(self.rtp_socket, False, now, wallclock)
            s.poll(now)
            if s.check_inactive(now) and self._callbacks.on_inactive is not None:
                self._callbacks.on_inactive()
            if s.rtcp.due(now):
                report = s.rtcp_report(now, wallclock)
                if report is not None:
                    self._send(self.rtp_socket if s.rtcp_mux else self.rtcp_socket, report, s.rtcp_target)
        except Exception:
            log.exception("RTP receive tick failed (port %d)", self.local_port)

    async def close(self) -> None:
        """Send an RTCP BYE, stop the clock for this endpoint and release the ports."""
        if self.closed:
            return
        self.closed = True
        s = self.stream
        if s is not None:
            bye = s.rtcp_report(self.loop.time(), time.time(), bye="")
            if bye is not None:
                self._send(self.rtp_socket if s.rtcp_mux else self.rtcp_socket, bye, s.rtcp_target)
        if self._registered:
            self.clock.remove(self)
            self._registered = False
        for sock in (self.rtp_socket, self.rtcp_socket):
            with contextlib.suppress(Exception):
                self.loop.remove_reader(sock)
            sock.close()
