"""RTP packets (RFC 3550 §5.1) and RFC 7983 demultiplexing of a shared port.

``RtpPacket`` is a frozen value: ``RtpPacket.parse(data)`` and
``bytes(packet)`` round-trip exactly (header extension and padding
included).  Every truncation raises :class:`RtpError` naming what was cut.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from palaver.errors import MediaError

__all__ = ["PacketKind", "RtpError", "RtpPacket", "classify"]

PacketKind = Literal["rtp", "rtcp", "stun", "dtls", "unknown"]

_FIXED = 12


class RtpError(MediaError, ValueError):
    """Bytes that are not an acceptable RTP packet, or unserialisable fields."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. ``extension`` is ``(profile, data)`` when the X bit is set."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    padding: int = 0
    version: int = 2

    def __post_init__(self) -> None:
        if self.version != 2:
            raise RtpError(f"RTP version {self.version} (only 2 is supported)")
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload type {self.payload_type} out of range 0-127")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise RtpError(f"sequence number {self.sequence_number} out of range 0-65535")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise RtpError(f"timestamp {self.timestamp} out of range 0-4294967295")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpError(f"SSRC {self.ssrc} out of range 0-4294967295")
        if len(self.csrc) > 15:
            raise RtpError(f"{len(self.csrc)} CSRCs (at most 15)")
        for c in self.csrc:
            if not 0 <= c <= 0xFFFFFFFF:
                raise RtpError(f"CSRC {c} out of range 0-4294967295")
        if self.extension is not None:
            profile, data = self.extension
            if not 0 <= profile <= 0xFFFF:
                raise RtpError(f"extension profile {profile} out of range 0-65535")
            if len(data) % 4:
                raise RtpError(f"extension length {len(data)} is not a multiple of 4")
            if len(data) > 0xFFFF * 4:
                raise RtpError(f"extension length {len(data)} exceeds {0xFFFF * 4}")
        if not 0 <= self.padding <= 255:
            raise RtpError(f"padding {self.padding} out of range 0-255")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one datagram; raise :class:`RtpError` with the precise fault."""
        data = bytes(data)
        if len(data) < _FIXED:
            raise RtpError(f"RTP packet length {len(data)} is less than {_FIXED} bytes")
        b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
        version = b0 >> 6
        if version != 2:
            raise RtpError(f"RTP packet has version {version}, expected 2")
        has_padding = bool(b0 & 0x20)
        has_extension = bool(b0 & 0x10)
        cc = b0 & 0x0F
        pos = _FIXED
        end = pos + 4 * cc
        if len(data) < end:
            raise RtpError(f"RTP packet length {len(data)} is too short for {cc} CSRCs ({end} bytes)")
        csrc = struct.unpack_from(f"!{cc}I", data, pos)
        pos = end
        extension: tuple[int, bytes] | None = None
        if has_extension:
            if len(data) < pos + 4:
                raise RtpError(
                    f"RTP packet length {len(data)} is too short for the extension header ({pos + 4} bytes)"
                )
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            end = pos + 4 * words
            if len(data) < end:
                raise RtpError(
                    f"RTP packet length {len(data)} is too short for a {4 * words}-byte extension "
                    f"({end} bytes)"
                )
            extension = (profile, data[pos:end])
            pos = end
        padding = 0
        if has_padding:
            if len(data) == pos:
                raise RtpError("RTP packet has the padding bit set but no padding length byte")
            padding = data[-1]
            if padding == 0:
                raise RtpError("RTP packet padding length is 0")
            if padding > len(data) - pos:
                raise RtpError(
                    f"RTP packet padding length {padding} exceeds the {len(data) - pos} bytes "
                    "after the header"
                )
        return cls(
            payload_type=b1 & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=data[pos : len(data) - padding],
            marker=bool(b1 & 0x80),
            csrc=tuple(csrc),
            extension=extension,
            padding=padding,
        )

    def __bytes__(self) -> bytes:
        b0 = (
            (self.version << 6)
            | (0x20 if self.padding else 0)
            | (0x10 if self.extension is not None else 0)
            | len(self.csrc)
        )
        b1 = (0x80 if self.marker else 0) | self.payload_type
        out = bytearray(struct.pack("!BBHII", b0, b1, self.sequence_number, self.timestamp, self.ssrc))
        for c in self.csrc:
            out += struct.pack("!I", c)
        if self.extension is not None:
            profile, data = self.extension
            out += struct.pack("!HH", profile, len(data) // 4)
            out += data
        out += self.payload
        if self.padding:
            out += bytes(self.padding - 1) + bytes([self.padding])
        return bytes(out)


def classify(data: bytes) -> PacketKind:
    """Demultiplex a datagram on a shared port (RFC 7983 §7, RFC 5761 §4)."""
    if not data:
        return "unknown"
    first = data[0]
    if first <= 3:
        return "stun"
    if 20 <= first <= 63:
        return "dtls"
    if 128 <= first <= 191:
        if len(data) < 2:
            return "unknown"
        return "rtcp" if 200 <= data[1] <= 204 else "rtp"
    return "unknown"
