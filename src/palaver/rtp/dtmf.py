"""RFC 4733 telephone-events: payload codec, receiver and sender sequence.

The receiver turns the packet stream of one SSRC into exactly one digit per
key press.  A press is identified by its RTP timestamp (the event start):
redundant end packets, retransmissions and late reordered updates share it,
so they are ignored; a lost first packet (no marker seen) still yields the
digit from whichever packet of the press arrives first; the same digit
pressed twice has two timestamps, hence two digits.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from palaver.errors import MediaError
from palaver.rtp.packet import RtpPacket

__all__ = ["DIGITS", "DtmfError", "DtmfReceiver", "TelephoneEvent", "dtmf_packets"]

DIGITS = "0123456789*#ABCD"
"""Event codes 0-15 in order (RFC 4733 §3.2)."""


class DtmfError(MediaError, ValueError):
    """A malformed telephone-event payload or an unsendable digit."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-byte telephone-event payload (RFC 4733 §2.3)."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise DtmfError(f"event {self.event} out of range 0-255")
        if not 0 <= self.volume <= 63:
            raise DtmfError(f"volume {self.volume} out of range 0-63")
        if not 0 <= self.duration <= 0xFFFF:
            raise DtmfError(f"duration {self.duration} out of range 0-65535")

    @property
    def digit(self) -> str | None:
        """The DTMF digit for events 0-15, else ``None`` (flash, tones ...)."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        if len(data) < 4:
            raise DtmfError(f"telephone-event payload length {len(data)} is less than 4 bytes")
        event, flags, duration = struct.unpack_from("!BBH", data)
        # The R bit is reserved: ignored on receipt.  Payloads longer than 4
        # bytes carry further (redundant, RFC 2198-less) blocks: only the first counts.
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def __bytes__(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | self.volume, self.duration)


@dataclass(slots=True)
class _Press:
    timestamp: int
    event: int
    duration: int
    ended: bool


class DtmfReceiver:
    """Feed RTP packets of the negotiated telephone-event payload type; get digits.

    ``feed`` returns the digit at the first packet of each new press, else ``None``.
    Packets of other payload types, malformed payloads and non-DTMF events
    return ``None``.
    """

    def __init__(self, payload_type: int = 101, *, memory: int = 16) -> None:
        self.payload_type = payload_type
        self._ssrc: int | None = None
        self._seen: deque[int] = deque(maxlen=memory)
        self._last: _Press | None = None

    def feed(self, packet: RtpPacket) -> str | None:
        if packet.payload_type != self.payload_type:
            return None
        try:
            ev = TelephoneEvent.parse(packet.payload)
        except DtmfError:
            return None
        if packet.ssrc != self._ssrc:
            self._ssrc = packet.ssrc
            self._seen.clear()
            self._last = None
        ts = packet.timestamp
        last = self._last
        if last is not None and ts == last.timestamp:
            last.duration = max(last.duration, ev.duration)
            last.ended = last.ended or ev.end
            return None
        if ts in self._seen:
            return None  # a late packet of an earlier press
        self._seen.append(ts)
        # RFC 4733 §2.5.1.3: an event longer than 65535 units continues in a
        # new segment whose timestamp is the old one plus its full duration.
        continuation = (
            last is not None
            and not last.ended
            and not packet.marker
            and last.event == ev.event
            and last.duration == 0xFFFF
            and ts == (last.timestamp + 0xFFFF) & 0xFFFFFFFF
        )
        self._last = _Press(timestamp=ts, event=ev.event, duration=ev.duration, ended=ev.end)
        if continuation:
            return None
        return ev.digit


def dtmf_packets(
    digit: str,
    start_timestamp: int,
    *,
    sequence_number: int,
    ssrc: int,
    payload_type: int = 101,
    duration_ms: int = 100,
    volume: int = 10,
    clock_rate: int = 8000,
    update_ms: int = 50,
    end_packets: int = 3,
) -> tuple[RtpPacket, ...]:
    """The sender's packets for one key press, in order, sharing ``start_timestamp``.

    The first carries the marker; one update follows every ``update_ms`` of
    elapsed duration, then ``end_packets`` identical-payload end packets carry
    the final duration.  Sequence numbers increase by one per packet
    (wrapping).  Send each packet once its duration has elapsed since the
    start: update ``i`` (0-based) at ``(i + 1) * update_ms`` ms, the end
    packets back to back at ``duration_ms``.
    """
    if len(digit) != 1 or digit.upper() not in DIGITS:
        raise DtmfError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
    if duration_ms <= 0 or update_ms <= 0 or end_packets < 1:
        raise DtmfError("duration_ms, update_ms and end_packets must be positive")
    total = duration_ms * clock_rate // 1000
    if total > 0xFFFF:
        raise DtmfError(f"duration {total} samples exceeds 65535 (one segment)")
    step = max(1, update_ms * clock_rate // 1000)
    event = DIGITS.index(digit.upper())
    durations = list(range(step, total, step)) or [total]
    payloads = [TelephoneEvent(event, False, volume, d) for d in durations]
    payloads += [TelephoneEvent(event, True, volume, total)] * end_packets
    return tuple(
        RtpPacket(
            payload_type=payload_type,
            sequence_number=(sequence_number + i) & 0xFFFF,
            timestamp=start_timestamp & 0xFFFFFFFF,
            ssrc=ssrc,
            payload=bytes(p),
            marker=i == 0,
        )
        for i, p in enumerate(payloads)
    )
