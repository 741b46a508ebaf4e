"""The Realtime API audio wire formats and streaming conversion to and from engine PCM.

* ``audio/pcm``: 16-bit little-endian mono PCM at 24 kHz;
* ``audio/pcmu``: G.711 μ-law at 8 kHz;
* ``audio/pcma``: G.711 A-law at 8 kHz.

Engine audio is 16-bit little-endian mono PCM at an engine-chosen rate. The converters are
streaming: they keep resampler state and an odd trailing PCM byte between calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from palaver.audio import g711
from palaver.audio.pcm import bytes_to_int16, int16_to_bytes
from palaver.audio.resample import StreamResampler

__all__ = [
    "FORMAT_TYPES",
    "InputDecoder",
    "OutputEncoder",
    "wire_bytes_per_second",
    "wire_duration_ms",
    "wire_rate",
]


@dataclass(frozen=True)
class _WireFormat:
    rate: int
    sample_width: int
    decode: Callable[[bytes], npt.NDArray[np.int16]] | None  # None: PCM16
    encode: Callable[[npt.NDArray[np.int16]], npt.NDArray[np.uint8]] | None


_FORMATS: dict[str, _WireFormat] = {
    "audio/pcm": _WireFormat(24000, 2, None, None),
    "audio/pcmu": _WireFormat(8000, 1, g711.ulaw_decode, g711.ulaw_encode),
    "audio/pcma": _WireFormat(8000, 1, g711.alaw_decode, g711.alaw_encode),
}

#: The supported wire format types.
FORMAT_TYPES: tuple[str, ...] = tuple(_FORMATS)


def _format(format_type: str) -> _WireFormat:
    try:
        return _FORMATS[format_type]
    except KeyError:
        known = ", ".join(FORMAT_TYPES)
        raise ValueError(f"unknown audio format type {format_type!r} (expected one of {known})") from None


def wire_rate(format_type: str) -> int:
    """Sample rate of a wire format in Hz."""
    return _format(format_type).rate


def wire_bytes_per_second(format_type: str) -> int:
    """Bytes per second of audio in a wire format."""
    fmt = _format(format_type)
    return fmt.rate * fmt.sample_width


def wire_duration_ms(format_type: str, nbytes: int) -> float:
    """Duration in milliseconds of ``nbytes`` of a wire format (whole samples only)."""
    fmt = _format(format_type)
    return (nbytes // fmt.sample_width) * 1000.0 / fmt.rate


class InputDecoder:
    """Client wire audio -> engine PCM16 at ``target_rate``."""

    def __init__(self, format_type: str, target_rate: int) -> None:
        self.format_type = format_type
        self.target_rate = target_rate
        self._fmt = _format(format_type)
        self._resampler = StreamResampler(self._fmt.rate, target_rate)
        self._carry = b""

    def decode(self, wire: bytes) -> bytes:
        """Convert a chunk of wire audio; returns the PCM16 that is ready (possibly empty)."""
        if self._fmt.decode is None:
            data = self._carry + wire if self._carry else wire
            whole = len(data) - len(data) % 2
            self._carry = bytes(data[whole:])
            samples = bytes_to_int16(bytes(data[:whole]))
        else:
            samples = self._fmt.decode(wire)
        return int16_to_bytes(self._resampler.process(samples))

    def flush(self) -> bytes:
        """End of input: return the resampler's held-back tail (an odd trailing byte is dropped)."""
        self._carry = b""
        return int16_to_bytes(self._resampler.flush())


class OutputEncoder:
    """Engine PCM16 at ``source_rate`` -> client wire audio."""

    def __init__(self, format_type: str, source_rate: int) -> None:
        self.format_type = format_type
        self.source_rate = source_rate
        self._fmt = _format(format_type)
        self._resampler = StreamResampler(source_rate, self._fmt.rate)
        self._carry = b""

    def encode(self, pcm: bytes) -> bytes:
        """Convert a chunk of engine PCM16; returns the wire bytes that are ready (possibly empty)."""
        data = self._carry + pcm if self._carry else pcm
        whole = len(data) - len(data) % 2
        self._carry = bytes(data[whole:])
        return self._to_wire(self._resampler.process(bytes_to_int16(bytes(data[:whole]))))

    def flush(self) -> bytes:
        """End of output: return the resampler's held-back tail (an odd trailing byte is dropped)."""
        self._carry = b""
        return self._to_wire(self._resampler.flush())

    def _to_wire(self, samples: npt.NDArray[np.int16]) -> bytes:
        if self._fmt.encode is None:
            return int16_to_bytes(samples)
        return self._fmt.encode(samples).tobytes()
