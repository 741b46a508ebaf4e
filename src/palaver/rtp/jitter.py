"""Fixed-delay jitter buffer for one RTP stream of fixed-size frames (20 ms).

Pure: the caller passes ``now`` (seconds, any monotonic origin) to
``push`` and ``pop``.  The first packet of a stream (or of a talkspurt after
the buffer ran dry) is played ``delay_frames`` frames after it arrived; each
following sequence number plays one frame later.  ``pop`` returns every due
frame in order: the packet when present, a *concealment* frame
(``concealed=True``, empty payload) when it is missing but later packets
are waiting, and ``None`` when nothing is due or the buffer ran dry.
"""

from __future__ import annotations

from dataclasses import dataclass

from palaver.rtp.packet import RtpPacket

__all__ = ["Frame", "JitterBuffer", "JitterStats"]

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Frame:
    sequence_number: int
    timestamp: int
    payload: bytes
    concealed: bool = False
    """True when the packet never arrived: the caller should conceal the gap."""
    marker: bool = False


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    played: int = 0
    lost: int = 0
    """Sequence numbers never received in time (concealed or skipped)."""
    late: int = 0
    """Packets that arrived after their play-out slot had passed."""
    duplicates: int = 0
    underruns: int = 0
    resets: int = 0
    """Re-synchronisations: a new SSRC or a sequence jump beyond the capacity."""


class JitterBuffer:
    def __init__(
        self,
        *,
        frame_ms: int = 20,
        delay_frames: int = 3,
        capacity: int = 50,
        clock_rate: int = 8000,
    ) -> None:
        if frame_ms <= 0 or delay_frames < 0 or capacity < 1:
            raise ValueError("frame_ms and capacity must be positive, delay_frames non-negative")
        self.frame_s = frame_ms / 1000
        self.delay_s = delay_frames * self.frame_s
        self.capacity = capacity
        self.frame_samples = clock_rate * frame_ms // 1000
        self.stats = JitterStats()
        self._frames: dict[int, RtpPacket] = {}
        self._ssrc: int | None = None
        self._highest: int | None = None
        self._next: int | None = None
        self._anchor = 0.0
        self._slot = 0
        self._idle = True
        self._last_ts = 0

    def __len__(self) -> int:
        return len(self._frames)

    def _extend(self, seq: int) -> int:
        if self._highest is None:
            return seq + 0x10000
        ref = self._highest
        ext = (ref & ~0xFFFF) | seq
        if ext - ref > 0x8000:
            ext -= 0x10000
        elif ref - ext > 0x8000:
            ext += 0x10000
        return ext

    def _start(self, ext: int, now: float) -> None:
        self._next = ext
        self._anchor = now + self.delay_s
        self._slot = 0
        self._idle = False

    def push(self, packet: RtpPacket, now: float) -> None:
        if self._ssrc is not None and packet.ssrc != self._ssrc:
            self._reset()
        self._ssrc = packet.ssrc
        ext = self._extend(packet.sequence_number)
        nxt = self._next
        if nxt is not None and ext < nxt:
            self.stats.late += 1
            return
        if ext in self._frames:
            self.stats.duplicates += 1
            return
        if nxt is not None and ext - nxt >= self.capacity:
            self._reset()
            ext = self._extend(packet.sequence_number)
            nxt = None
        self.stats.received += 1
        self._frames[ext] = packet
        self._highest = ext if self._highest is None else max(self._highest, ext)
        if nxt is None:
            self._start(ext, now)
        elif self._idle:
            self.stats.lost += ext - nxt
            self._start(ext, now)

    def _reset(self) -> None:
        self.stats.resets += 1
        self._frames.clear()
        self._highest = None
        self._next = None
        self._idle = True

    def pop(self, now: float) -> Frame | None:
        nxt = self._next
        # Slot k of the current talkspurt plays at anchor + k frames; the
        # epsilon absorbs float rounding of caller clocks (0.1 + 0.02 > 0.12).
        if nxt is None or self._idle or now + _EPSILON < self._anchor + self._slot * self.frame_s:
            return None
        packet = self._frames.pop(nxt, None)
        if packet is None and not self._frames:
            self.stats.underruns += 1
            self._idle = True
            return None
        self._next = nxt + 1
        self._slot += 1
        if packet is None:
            self.stats.lost += 1
            self._last_ts = (self._last_ts + self.frame_samples) & 0xFFFFFFFF
            return Frame(nxt & 0xFFFF, self._last_ts, b"", concealed=True)
        self.stats.played += 1
        self._last_ts = packet.timestamp
        return Frame(packet.sequence_number, packet.timestamp, packet.payload, marker=packet.marker)
