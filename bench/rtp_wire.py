"""What the wire saw: RTP departures on ``lo`` with kernel timestamps, and their pacing and gaps.

    with RtpCapture([sipp_media_port]) as capture:       # packets *sent to* those UDP ports
        ...
        capture.active(since=time.time() - 0.5)           # streams heard lately (readiness)
    report = analyse(capture.packets(), start, end, dst=sipp_media_port)   # pacing and gaps
    delays = echo_delays(capture.packets(), start, end, sent_to=echo, echoed_to=sipp_media_port)

Shared by the benchmarks that need to know how a server paced its RTP as a packet capture
would show it, not as the sender believes (``bench/sip_calls.py``). Compared with
``tests/support/rtp_sniffer.py`` (a test helper that keeps whole packets and filters in Python),
this one is built for tens of thousands of packets a second: a classic BPF program in the
kernel keeps only outgoing IPv4/UDP packets to the given ports and truncates them to their
headers, each packet becomes a small tuple, and the kernel's own drop counter is read
(``PACKET_STATISTICS``), so a gap the capture caused is never blamed on the sender. Needs root
or CAP_NET_RAW (``RtpCapture.available()``).

Times are ``SO_TIMESTAMPNS`` (CLOCK_REALTIME, the moment the packet passed the loopback tap,
i.e. its ``sendto``), comparable with ``time.time()``.
"""

from __future__ import annotations

import ctypes
import socket
import statistics
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

__all__ = ["EchoReport", "PacketSeen", "RtpCapture", "WireReport", "analyse", "echo_delays", "percentile"]

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PACKET_OUTGOING = 4
SNAPLEN = 64  # Ethernet 14 + IPv4 20 + UDP 8 + RTP 12 = 54
FRAME_SECONDS = 0.020
SAMPLES_PER_FRAME = 160

#: (kernel time, UDP source port, UDP destination port, RTP SSRC, sequence, RTP timestamp, payload type)
PacketSeen = tuple[float, int, int, int, int, int, int]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by rank (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _bpf_outgoing_udp_to(ports: Sequence[int]) -> bytes:
    """Classic BPF: accept outgoing, unfragmented IPv4/UDP to one of ``ports`` (first SNAPLEN bytes)."""
    ld_w_abs, ld_h_abs, ld_b_abs, ld_h_ind, ldx_b_msh = 0x20, 0x28, 0x30, 0x48, 0xB1
    jeq, jset, ret = 0x15, 0x45, 0x06
    pkttype = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE
    drop = 10 + len(ports)  # then accept at drop + 1; jump offsets count from the next instruction
    program = [
        (ld_w_abs, 0, 0, pkttype),
        (jeq, 0, drop - 2, PACKET_OUTGOING),
        (ld_h_abs, 0, 0, 12),  # EtherType
        (jeq, 0, drop - 4, 0x0800),
        (ld_b_abs, 0, 0, 23),  # IP protocol
        (jeq, 0, drop - 6, 17),
        (ld_h_abs, 0, 0, 20),  # flags + fragment offset
        (jset, drop - 8, 0, 0x1FFF),  # a fragment
        (ldx_b_msh, 0, 0, 14),  # X = IP header length
        (ld_h_ind, 0, 0, 16),  # UDP destination port
    ]
    for i, port in enumerate(ports):
        program.append((jeq, drop - (10 + i), 0, port))  # to accept (drop + 1)
    program += [(ret, 0, 0, 0), (ret, 0, 0, SNAPLEN)]
    return b"".join(struct.pack("HBBI", *insn) for insn in program)


class RtpCapture:
    """A thread reading a filtered ``AF_PACKET`` socket on ``interface`` until closed."""

    def __init__(
        self, dst_ports: Sequence[int], interface: str = "lo", buffer_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.dst_ports = tuple(dst_ports)
        # Protocol 0: no packets until bound, so nothing unfiltered is queued before the filter.
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self._program = ctypes.create_string_buffer(_bpf_outgoing_udp_to(self.dst_ports))
        fprog = struct.pack("HL", len(self._program.raw) // 8, ctypes.addressof(self._program))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, buffer_bytes)
        except OSError:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
        self._sock.bind((interface, ETH_P_ALL))
        self._sock.settimeout(0.2)
        self._seen: list[PacketSeen] = []
        self._last: dict[tuple[int, int, int], float] = {}
        self._stop = threading.Event()
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="rtp-capture", daemon=True)

    @staticmethod
    def available() -> bool:
        try:
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
        except (PermissionError, OSError, AttributeError):
            return False
        return True

    def _run(self) -> None:
        recvmsg = self._sock.recvmsg
        unpack_time = struct.Struct("qq").unpack_from
        unpack_udp_rtp = struct.Struct("!HHxxxxBBHII").unpack_from
        append = self._seen.append
        last = self._last
        while not self._stop.is_set():
            try:
                data, ancillary, _, _ = recvmsg(SNAPLEN, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            udp = 14 + (data[14] & 0x0F) * 4
            if len(data) < udp + 20 or not ancillary:
                continue
            seconds, nanos = unpack_time(ancillary[0][2])
            when = seconds + nanos * 1e-9
            src, dst, b0, b1, seq, stamp, ssrc = unpack_udp_rtp(data, udp)
            if b0 >> 6 != 2:
                continue
            append((when, src, dst, ssrc, seq, stamp, b1 & 0x7F))
            last[(src, dst, ssrc)] = when

    def active(self, since: float, dst: int | None = None) -> int:
        """Streams (source port, destination port, SSRC) that sent a packet at or after ``since``
        (Unix time), to ``dst`` only when given."""
        return sum(1 for (_, d, _), when in list(self._last.items()) if when >= since and dst in (None, d))

    def first(self) -> float | None:
        """Time of the first packet seen."""
        return self._seen[0][0] if self._seen else None

    def packets(self) -> list[PacketSeen]:
        return list(self._seen)

    def dropped(self) -> int:
        """Packets the kernel dropped because this capture did not keep up (so far)."""
        raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        self._dropped += struct.unpack("II", raw)[1]  # the counters reset on each read
        return self._dropped

    def __enter__(self) -> RtpCapture:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def _streams(
    packets: Sequence[PacketSeen], start: float, end: float, dst: int | None, payload_type: int | None
) -> dict[tuple[int, int], list[PacketSeen]]:
    by_stream: dict[tuple[int, int], list[PacketSeen]] = {}
    for packet in packets:
        pt = packet[6]
        if (
            start <= packet[0] <= end
            and dst in (None, packet[2])
            and not 72 <= pt <= 95  # RTCP
            and payload_type in (None, pt)
        ):
            by_stream.setdefault((packet[1], packet[3]), []).append(packet)
    return by_stream


def _spread_ms(values: list[float]) -> list[float]:
    """Each value's distance from the median of ``values``, in ms."""
    middle = statistics.median(values)
    return [abs(v - middle) * 1000.0 for v in values]


@dataclass(frozen=True)
class WireReport:
    streams: int
    packets: int
    deviations_ms: list[float]
    """Per packet: its departure's distance from its stream's 20 ms grid, in ms (see ``analyse``)."""
    missing: int
    """Slots of the grid with no packet, between each stream's first and last packet in the window."""
    sequence_gaps: int
    """Sequence numbers never seen between each stream's first and last (fewer than ``missing``
    when a sender skipped slots on purpose: skipping moves the timestamp, not the sequence)."""

    @property
    def p50(self) -> float:
        return percentile(self.deviations_ms, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.deviations_ms, 0.99)

    @property
    def worst(self) -> float:
        return max(self.deviations_ms, default=float("nan"))


def analyse(
    packets: Sequence[PacketSeen],
    start: float,
    end: float,
    *,
    dst: int | None = None,
    payload_type: int | None = None,
) -> WireReport:
    """Pacing and gaps of every stream (source port, SSRC) sent to ``dst`` in ``[start, end]``,
    counting only ``payload_type`` when given (DTMF events carry the timestamp of the key
    press, not of a slot). RTCP is always skipped.

    A packet's slot comes from its RTP timestamp (``k = (ts - ts_first) / 160``: 20 ms of
    8 kHz audio per slot), so on an exact clock it would leave at ``t0 + 20 ms × k``. The
    stream's phase ``t0`` is taken as the median of ``t - 20 ms × k`` over its packets, and a
    packet's deviation is its distance from that grid: a constant delay is no jitter, a packet
    sent 4 ms after (or before) the others' rhythm is 4 ms. The median, not the earliest, so
    that one packet sent a slot early (SIPp's millisecond clock does that) does not shift the
    grid of the whole stream.
    """
    streams = _streams(packets, start, end, dst, payload_type)
    deviations: list[float] = []
    missing = gaps = total = 0
    for stream in streams.values():
        first_stamp, first_seq = stream[0][5], stream[0][4]
        offsets: list[float] = []
        slots: set[int] = set()
        sequences: set[int] = set()
        for when, _, _, _, seq, stamp, _ in stream:
            k = ((stamp - first_stamp) & 0xFFFFFFFF) // SAMPLES_PER_FRAME
            slots.add(k)
            sequences.add((seq - first_seq) & 0xFFFF)
            offsets.append(when - k * FRAME_SECONDS)
        deviations.extend(_spread_ms(offsets))
        missing += max(slots) + 1 - len(slots)
        gaps += max(sequences) + 1 - len(sequences)
        total += len(stream)
    return WireReport(len(streams), total, deviations, missing, gaps)


@dataclass(frozen=True)
class EchoReport:
    sent: int
    """Packets sent to the echo in the window."""
    unanswered: int
    """Of those, how many never came back (matched by SSRC and sequence number)."""
    delays_ms: list[float]
    """Per echoed packet: echo departure minus the original's departure, in ms."""
    jitter_ms: list[float]
    """Per echoed packet: the distance of its delay from its stream's median delay, in ms: the
    jitter the echo added to what it was sent."""


def echo_delays(
    packets: Sequence[PacketSeen], start: float, end: float, *, sent_to: int, echoed_to: int
) -> EchoReport:
    """Match each packet sent to port ``sent_to`` in ``[start, end]`` with its echo to ``echoed_to``."""
    echoed: dict[tuple[int, int], float] = {}
    for when, _, dst, ssrc, seq, _, _ in packets:
        if dst == echoed_to and start <= when:
            echoed.setdefault((ssrc, seq), when)
    sent = unanswered = 0
    per_stream: dict[int, list[float]] = {}
    for when, _, dst, ssrc, seq, _, _ in packets:
        if dst != sent_to or not start <= when <= end:
            continue
        sent += 1
        back = echoed.get((ssrc, seq))
        if back is None or back < when:
            unanswered += 1
            continue
        per_stream.setdefault(ssrc, []).append(back - when)
    delays = [d * 1000.0 for values in per_stream.values() for d in values]
    jitter = [j for values in per_stream.values() for j in _spread_ms(values)]
    return EchoReport(sent, unanswered, delays, jitter)
