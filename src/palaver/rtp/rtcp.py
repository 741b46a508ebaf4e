"""RTCP (RFC 3550 §6): SR, RR, SDES, BYE packets, and the per-stream report bookkeeping.

Pure: callers pass ``now`` (monotonic seconds, for intervals) and ``wallclock`` (Unix seconds,
for the NTP fields). Telephony peers mostly use RTCP for call-quality statistics; we send a
sender report (with a reception report block for the peer once it has sent us anything)
every ~5 s and read the peer's reports into loss, jitter and round-trip figures.

``parse_compound`` accepts every well-formed compound packet, keeps packet types it does not
model (APP, XR, feedback) as :class:`UnknownRtcp`, and raises :class:`RtcpError` for bytes that
are not RTCP at all.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from palaver.errors import MediaError

__all__ = [
    "Bye",
    "ReceiverReport",
    "ReceptionStats",
    "RemoteReport",
    "ReportBlock",
    "RtcpError",
    "RtcpPacket",
    "RtcpSession",
    "SdesChunk",
    "SenderReport",
    "SourceDescription",
    "UnknownRtcp",
    "ntp_middle32",
    "ntp_timestamp",
    "parse_compound",
]

SR, RR, SDES, BYE = 200, 201, 202, 203
CNAME = 1
_NTP_EPOCH_OFFSET = 2208988800  # 1900-01-01 to 1970-01-01 in seconds
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100


class RtcpError(MediaError, ValueError):
    """Bytes that are not a well-formed RTCP compound packet."""


def ntp_timestamp(wallclock: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point since 1900) of a Unix time."""
    return int((wallclock + _NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits (16.16 fixed point), as used by LSR and round-trip arithmetic."""
    return (ntp >> 16) & 0xFFFFFFFF


def _header(packet_type: int, count: int, body_len: int, padding: bool = False) -> bytes:
    if body_len % 4:
        raise RtcpError(f"RTCP body length {body_len} is not a multiple of 4")
    if not 0 <= count <= 31:
        raise RtcpError(f"RTCP count {count} out of range 0-31")
    return struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, packet_type, body_len // 4)


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report (RFC 3550 §6.4.1) about the source ``ssrc``."""

    ssrc: int
    fraction_lost: int
    """Fraction lost since the previous report, in 1/256 units."""
    cumulative_lost: int
    """Signed 24-bit: duplicates can make it negative."""
    highest_seq: int
    """Extended highest sequence number received (cycles << 16 | seq)."""
    jitter: int
    """Interarrival jitter in timestamp units."""
    lsr: int = 0
    """Middle 32 bits of the NTP time of the last SR from ``ssrc`` (0: none yet)."""
    dlsr: int = 0
    """Delay since that SR in 1/65536 s."""

    _FORMAT = struct.Struct("!IB3sIIII")

    def __bytes__(self) -> bytes:
        lost = max(-0x800000, min(0x7FFFFF, self.cumulative_lost)) & 0xFFFFFF
        return self._FORMAT.pack(
            self.ssrc,
            self.fraction_lost & 0xFF,
            lost.to_bytes(3, "big"),
            self.highest_seq & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, lost3, highest, jitter, lsr, dlsr = cls._FORMAT.unpack_from(data, offset)
        lost = int.from_bytes(lost3, "big")
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, fraction, lost, highest, jitter, lsr, dlsr)


_BLOCK = 24


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = struct.pack(
            "!IQIII",
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp & 0xFFFFFFFF,
            self.packet_count & 0xFFFFFFFF,
            self.octet_count & 0xFFFFFFFF,
        ) + b"".join(bytes(r) for r in self.reports)
        return _header(SR, len(self.reports), len(body)) + body


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(bytes(r) for r in self.reports)
        return _header(RR, len(self.reports), len(body)) + body


@dataclass(frozen=True, slots=True)
class SdesChunk:
    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()
    """(item type, value) pairs; type 1 is CNAME."""

    def __bytes__(self) -> bytes:
        out = bytearray(struct.pack("!I", self.ssrc))
        for kind, value in self.items:
            if not 1 <= kind <= 255 or len(value) > 255:
                raise RtcpError(f"SDES item type {kind} or length {len(value)} out of range")
            out += bytes((kind, len(value))) + value
        out += b"\x00" * (4 - len(out) % 4)  # the null item, then padding to a word boundary
        return bytes(out)

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == CNAME:
                return value.decode("utf-8", "replace")
        return None


@dataclass(frozen=True, slots=True)
class SourceDescription:
    chunks: tuple[SdesChunk, ...]

    def __bytes__(self) -> bytes:
        body = b"".join(bytes(c) for c in self.chunks)
        return _header(SDES, len(self.chunks), len(body)) + body


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: str | None = None

    def __bytes__(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.ssrcs)
        if self.reason is not None:
            text = self.reason.encode("utf-8")[:255]
            body += bytes((len(text),)) + text
            body += b"\x00" * (-len(body) % 4)
        return _header(BYE, len(self.ssrcs), len(body)) + body


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """A packet type we do not model (APP, XR, RTPFB/PSFB ...), kept as its body."""

    packet_type: int
    count: int
    body: bytes

    def __bytes__(self) -> bytes:
        return _header(self.packet_type, self.count, len(self.body)) + self.body


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcp


def _parse_sdes(body: bytes, count: int) -> SourceDescription:
    chunks: list[SdesChunk] = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(body):
            raise RtcpError("SDES chunk truncated")
        (ssrc,) = struct.unpack_from("!I", body, pos)
        pos += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if pos >= len(body):
                raise RtcpError("SDES chunk without its terminating null item")
            kind = body[pos]
            if kind == 0:
                pos += 1
                pos += -pos % 4
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise RtcpError("SDES item truncated")
            n = body[pos + 1]
            items.append((kind, body[pos + 2 : pos + 2 + n]))
            pos += 2 + n
        chunks.append(SdesChunk(ssrc, tuple(items)))
    return SourceDescription(tuple(chunks))


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == SR:
        if len(body) < 24 + _BLOCK * count:
            raise RtcpError(
                f"SR with {count} report blocks needs {24 + _BLOCK * count} bytes, has {len(body)}"
            )
        ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", body)
        blocks = tuple(ReportBlock.parse(body, 24 + _BLOCK * i) for i in range(count))
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, blocks)
    if packet_type == RR:
        if len(body) < 4 + _BLOCK * count:
            raise RtcpError(
                f"RR with {count} report blocks needs {4 + _BLOCK * count} bytes, has {len(body)}"
            )
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc, tuple(ReportBlock.parse(body, 4 + _BLOCK * i) for i in range(count)))
    if packet_type == SDES:
        return _parse_sdes(body, count)
    if packet_type == BYE:
        if len(body) < 4 * count:
            raise RtcpError(f"BYE with {count} sources needs {4 * count} bytes, has {len(body)}")
        ssrcs = struct.unpack_from(f"!{count}I", body)
        reason: str | None = None
        pos = 4 * count
        if pos < len(body):
            n = body[pos]
            if pos + 1 + n > len(body):
                raise RtcpError("BYE reason truncated")
            reason = body[pos + 1 : pos + 1 + n].decode("utf-8", "replace")
        return Bye(tuple(ssrcs), reason)
    return UnknownRtcp(packet_type, count, body)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Every packet of a compound RTCP datagram, in order."""
    data = bytes(data)
    if len(data) < 4:
        raise RtcpError(f"RTCP packet length {len(data)} is less than 4 bytes")
    out: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise RtcpError(f"{len(data) - pos} trailing bytes after the last RTCP packet")
        b0, packet_type, words = struct.unpack_from("!BBH", data, pos)
        if b0 >> 6 != 2:
            raise RtcpError(f"RTCP version {b0 >> 6}, expected 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtcpError(f"RTCP packet of {4 + 4 * words} bytes truncated to {len(data) - pos}")
        body = data[pos + 4 : end]
        if b0 & 0x20:  # padding: only legal on the last packet (RFC 3550 §6.4.1)
            if end != len(data) or not body or not 0 < body[-1] <= len(body):
                raise RtcpError("bad RTCP padding")
            body = body[: -body[-1]]
        out.append(_parse_one(packet_type, b0 & 0x1F, body))
        pos = end
    return out


@dataclass(slots=True)
class ReceptionStats:
    """RFC 3550 Appendix A.1/A.3/A.8 for the one source we receive: sequence, loss, jitter."""

    clock_rate: int = 8000
    ssrc: int | None = None
    received: int = 0
    base_seq: int = 0
    max_seq: int = 0
    cycles: int = 0
    jitter: float = 0.0
    """Interarrival jitter estimate in timestamp units."""
    _bad_seq: int = -1
    _transit: float | None = None
    _expected_prior: int = 0
    _received_prior: int = 0

    def _init(self, ssrc: int, seq: int) -> None:
        self.ssrc = ssrc
        self.base_seq = seq
        self.max_seq = seq
        self.cycles = 0
        self.received = 0
        self.jitter = 0.0
        self._bad_seq = -1
        self._transit = None
        self._expected_prior = 0
        self._received_prior = 0

    def update(self, ssrc: int, seq: int, rtp_timestamp: int, arrival: float, *, timing: bool = True) -> None:
        """One accepted packet. ``timing=False`` for packets whose timestamp is not their
        sampling instant (RFC 4733 events keep the event start), which would skew jitter."""
        if ssrc != self.ssrc:
            self._init(ssrc, seq)
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if delta < _MAX_DROPOUT:
                if seq < self.max_seq:
                    self.cycles += 0x10000
                self.max_seq = seq
            elif delta <= 0x10000 - _MAX_MISORDER:
                # A big jump: believe it when the next packet continues it (the peer restarted).
                if seq != self._bad_seq:
                    self._bad_seq = (seq + 1) & 0xFFFF
                    return
                self._init(ssrc, seq)
            # else: a duplicate or reordered packet, counted below
        self.received += 1
        if timing:
            transit = arrival * self.clock_rate - rtp_timestamp
            if self._transit is not None:
                d = abs(transit - self._transit)
                if d < 0x80000000:  # not a timestamp wrap or restart
                    self.jitter += (d - self.jitter) / 16
            self._transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.ssrc is not None else 0

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def report_block(self, lsr: int = 0, dlsr: int = 0) -> ReportBlock | None:
        """The block for our next report; resets the fraction-lost interval."""
        if self.ssrc is None:
            return None
        expected = self.expected
        interval_expected = expected - self._expected_prior
        interval_lost = interval_expected - (self.received - self._received_prior)
        self._expected_prior = expected
        self._received_prior = self.received
        fraction = (
            0 if interval_expected <= 0 or interval_lost <= 0 else (interval_lost << 8) // interval_expected
        )
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            cumulative_lost=self.lost,
            highest_seq=self.extended_max,
            jitter=int(self.jitter),
            lsr=lsr,
            dlsr=dlsr,
        )


@dataclass(slots=True)
class RemoteReport:
    """What the peer last told us about the stream we send."""

    reports: int = 0
    fraction_lost: float = 0.0
    """0.0-1.0 over the peer's last report interval."""
    cumulative_lost: int = 0
    jitter_ms: float = 0.0
    rtt_ms: float | None = None
    sender_reports: int = 0
    byes: int = 0
    cname: str | None = None


@dataclass(slots=True)
class RtcpSession:
    """Report timing and contents for one RTP stream (RFC 3550 §6.2-6.4, two-party call)."""

    ssrc: int
    cname: str
    clock_rate: int = 8000
    interval: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    reception: ReceptionStats = field(init=False)
    remote: RemoteReport = field(default_factory=RemoteReport)
    malformed: int = 0
    _next: float | None = None
    _last_sr: tuple[int, float] | None = None  # (middle 32 bits of its NTP time, our now)

    def __post_init__(self) -> None:
        self.reception = ReceptionStats(self.clock_rate)

    def due(self, now: float) -> bool:
        """Time for a report? The first is sent half an interval in; then ~every interval,
        randomised ×[0.5, 1.5] so that the two ends do not synchronise (§6.2)."""
        if self._next is None:
            self._next = now + self.interval * 0.5
        return now >= self._next

    def build(
        self,
        now: float,
        wallclock: float,
        sender: tuple[int, int, int] | None,
        *,
        bye: str | None = None,
    ) -> bytes:
        """A compound SR (``sender`` = (packets, octets, rtp timestamp now)) or RR, then SDES
        CNAME, then BYE when ``bye`` is given; schedules the next report."""
        self._next = now + self.interval * self.rng.uniform(0.5, 1.5)
        lsr = dlsr = 0
        if self._last_sr is not None:
            lsr = self._last_sr[0]
            dlsr = int((now - self._last_sr[1]) * 65536)
        block = self.reception.report_block(lsr, dlsr)
        blocks = (block,) if block is not None else ()
        report: SenderReport | ReceiverReport
        if sender is not None:
            packets, octets, rtp_ts = sender
            report = SenderReport(self.ssrc, ntp_timestamp(wallclock), rtp_ts, packets, octets, blocks)
        else:
            report = ReceiverReport(self.ssrc, blocks)
        parts: list[RtcpPacket] = [
            report,
            SourceDescription((SdesChunk(self.ssrc, ((CNAME, self.cname.encode("utf-8")[:255]),)),)),
        ]
        if bye is not None:
            parts.append(Bye((self.ssrc,), bye or None))
        return b"".join(bytes(p) for p in parts)

    def receive(self, data: bytes, now: float, wallclock: float | None = None) -> list[RtcpPacket]:
        """Read the peer's (already decrypted) compound packet; malformed input is counted.
        Without ``wallclock`` (Unix time) no round-trip time is computed."""
        try:
            packets = parse_compound(data)
        except RtcpError:
            self.malformed += 1
            return []
        for p in packets:
            blocks: tuple[ReportBlock, ...] = ()
            if isinstance(p, SenderReport):
                self.remote.sender_reports += 1
                self._last_sr = (ntp_middle32(p.ntp_timestamp), now)
                blocks = p.reports
            elif isinstance(p, ReceiverReport):
                blocks = p.reports
            elif isinstance(p, SourceDescription):
                for c in p.chunks:
                    if c.cname is not None and c.ssrc != self.ssrc:
                        self.remote.cname = c.cname
            elif isinstance(p, Bye):
                self.remote.byes += 1
            for b in blocks:
                if b.ssrc == self.ssrc:
                    self._read_block(b, wallclock)
        return packets

    def _read_block(self, b: ReportBlock, wallclock: float | None) -> None:
        r = self.remote
        r.reports += 1
        r.fraction_lost = b.fraction_lost / 256
        r.cumulative_lost = b.cumulative_lost
        r.jitter_ms = b.jitter * 1000 / self.clock_rate
        if b.lsr and wallclock is not None:
            arrival = ntp_middle32(ntp_timestamp(wallclock))
            rtt = (arrival - b.lsr - b.dlsr) & 0xFFFFFFFF
            if rtt < 0x80000000:  # a negative difference wraps: clock trouble, skip it
                r.rtt_ms = rtt * 1000 / 65536
