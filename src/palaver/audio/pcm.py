"""Conversions between 16-bit little-endian mono PCM bytes and numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "SAMPLE_WIDTH",
    "bytes_to_float32",
    "bytes_to_int16",
    "duration_ms",
    "float32_to_bytes",
    "float32_to_int16",
    "int16_to_bytes",
    "int16_to_float32",
]

#: Bytes per sample of 16-bit PCM.
SAMPLE_WIDTH = 2

_LE_INT16 = np.dtype("<i2")


def bytes_to_int16(pcm: bytes) -> npt.NDArray[np.int16]:
    """Decode 16-bit little-endian PCM into a (new, writable) native int16 array.

    An odd trailing byte is an error: streaming callers must keep it for the next chunk.
    """
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"PCM16 data must have an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype=_LE_INT16).astype(np.int16)


def int16_to_bytes(samples: npt.NDArray[np.int16]) -> bytes:
    """Encode int16 samples as 16-bit little-endian PCM."""
    return np.asarray(samples, dtype=_LE_INT16).tobytes()


def int16_to_float32(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """Scale int16 samples to float32 in [-1, 1)."""
    return np.asarray(samples, dtype=np.float32) * np.float32(1.0 / 32768.0)


def float32_to_int16(samples: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.int16]:
    """Scale float samples in [-1, 1] to int16, rounding to nearest and clipping."""
    scaled = np.rint(np.asarray(samples, dtype=np.float32) * np.float32(32768.0))
    out: npt.NDArray[np.int16] = np.clip(scaled, -32768, 32767).astype(np.int16)
    return out


def bytes_to_float32(pcm: bytes) -> npt.NDArray[np.float32]:
    """Decode 16-bit little-endian PCM into float32 samples in [-1, 1)."""
    return int16_to_float32(bytes_to_int16(pcm))


def float32_to_bytes(samples: npt.NDArray[np.floating[Any]]) -> bytes:
    """Encode float samples in [-1, 1] as 16-bit little-endian PCM."""
    return int16_to_bytes(float32_to_int16(samples))


def duration_ms(nbytes: int, rate: int) -> float:
    """Duration in milliseconds of ``nbytes`` of 16-bit mono PCM at ``rate`` Hz."""
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    return (nbytes // SAMPLE_WIDTH) * 1000.0 / rate
