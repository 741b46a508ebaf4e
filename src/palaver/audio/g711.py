"""G.711 μ-law and A-law companding, bit-exact with the ITU-T G.191 reference (g711.c).

Encoding and decoding are table lookups: a 65536-entry table maps every int16 sample to its
code, a 256-entry table maps every code to its int16 value. The input to the encoders is
16-bit linear PCM (the reference's left-justified 14-bit/13-bit input), as on the wire.

Note: μ-law has two zero codes; 0x7F ("negative zero") decodes to 0, which encodes to 0xFF.
Every other code of both laws survives ``encode(decode(code))`` unchanged.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_DECODE_TABLE",
    "ULAW_DECODE_TABLE",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

_BIT_LENGTH = np.array([int(v).bit_length() for v in range(2048)], dtype=np.int32)


def _all_int16() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (the lookup index)."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    x = _all_int16()
    absno = np.where(x < 0, (~x) >> 2, x >> 2) + 33  # 14-bit magnitude plus the bias
    absno = np.minimum(absno, 0x1FFF)
    segno = 1 + _BIT_LENGTH[absno >> 6]
    high = 8 - segno
    low = 15 - ((absno >> segno) & 0x0F)
    code = (high << 4) | low
    code = np.where(x >= 0, code | 0x80, code)
    table: npt.NDArray[np.uint8] = code.astype(np.uint8)
    return table


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32)
    sign = np.where(codes < 0x80, -1, 1)
    inverted = ~codes
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    table: npt.NDArray[np.int16] = (sign * magnitude).astype(np.int16)
    return table


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    x = _all_int16()
    ix = np.where(x < 0, (~x) >> 4, x >> 4)  # 12-bit magnitude (one's complement for negatives)
    exponent = np.maximum(_BIT_LENGTH[ix] - 4, 0)  # 0 for ix <= 15, else 1..7
    segmented = (ix >> np.maximum(exponent - 1, 0)) - 16 + (exponent << 4)
    ix = np.where(exponent > 0, segmented, ix)
    ix = np.where(x >= 0, ix | 0x80, ix)
    return (ix ^ 0x55).astype(np.uint8)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32)
    ix = (codes ^ 0x55) & 0x7F
    exponent = ix >> 4
    mantissa = ix & 0x0F
    mantissa = np.where(exponent > 0, mantissa + 16, mantissa)
    mantissa = (mantissa << 4) + 0x08
    mantissa = np.where(exponent > 1, mantissa << np.maximum(exponent - 1, 0), mantissa)
    return np.where(codes > 127, mantissa, -mantissa).astype(np.int16)


_ULAW_ENCODE = _build_ulaw_encode()
_ALAW_ENCODE = _build_alaw_encode()
#: The int16 value of each μ-law code.
ULAW_DECODE_TABLE = _build_ulaw_decode()
#: The int16 value of each A-law code.
ALAW_DECODE_TABLE = _build_alaw_decode()
for _table in (_ULAW_ENCODE, _ALAW_ENCODE, ULAW_DECODE_TABLE, ALAW_DECODE_TABLE):
    _table.setflags(write=False)


def _codes(data: bytes | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if isinstance(data, bytes | bytearray | memoryview):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8)


def _index(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint16]:
    return np.ascontiguousarray(samples, dtype=np.int16).view(np.uint16)


def ulaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """Encode int16 samples to μ-law codes."""
    return _ULAW_ENCODE[_index(samples)]


def ulaw_decode(data: bytes | npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Decode μ-law codes (bytes or a uint8 array) to int16 samples."""
    return ULAW_DECODE_TABLE[_codes(data)]


def alaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """Encode int16 samples to A-law codes."""
    return _ALAW_ENCODE[_index(samples)]


def alaw_decode(data: bytes | npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Decode A-law codes (bytes or a uint8 array) to int16 samples."""
    return ALAW_DECODE_TABLE[_codes(data)]
