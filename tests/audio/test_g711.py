"""G.711 against the ITU-T G.191 reference code points."""

from collections.abc import Callable

import numpy as np
import pytest

from palaver.audio.g711 import (
    ALAW_DECODE_TABLE,
    ULAW_DECODE_TABLE,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)

ALL_CODES = np.arange(256, dtype=np.uint8)
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


def _ulaw_reference_decode(code: int) -> int:
    # G.191 ulaw_expand, written out per code.
    sign = -1 if code < 0x80 else 1
    inverted = ~code
    exponent = (inverted >> 4) & 7
    mantissa = inverted & 0xF
    step = 4 << (exponent + 1)
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)


def _alaw_reference_decode(code: int) -> int:
    # G.191 alaw_expand, written out per code.
    ix = (code ^ 0x55) & 0x7F
    exponent, mantissa = ix >> 4, ix & 0xF
    if exponent > 0:
        mantissa += 16
    mantissa = (mantissa << 4) + 8
    if exponent > 1:
        mantissa <<= exponent - 1
    return mantissa if code > 127 else -mantissa


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0x80, 32124), (0x00, -32124), (0xFE, 8), (0x7E, -8), (0xF0, 120), (0xEF, 132)],
)
def test_ulaw_code_points(code: int, value: int) -> None:
    assert int(ULAW_DECODE_TABLE[code]) == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xC5, 264), (0xFA, 1008)],
)
def test_alaw_code_points(code: int, value: int) -> None:
    assert int(ALAW_DECODE_TABLE[code]) == value


def test_decode_tables_match_reference_for_all_codes() -> None:
    assert ULAW_DECODE_TABLE.tolist() == [_ulaw_reference_decode(c) for c in range(256)]
    assert ALAW_DECODE_TABLE.tolist() == [_alaw_reference_decode(c) for c in range(256)]


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (-1, 0x7F, 0x55),  # G.191 uses the one's complement for negatives
        (3, 0xFF, 0xD5),
        (4, 0xFE, 0xD5),
        (16, 0xFD, 0xD4),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
    ],
)
def test_encode_code_points(sample: int, ulaw: int, alaw: int) -> None:
    x = np.array([sample], dtype=np.int16)
    assert int(ulaw_encode(x)[0]) == ulaw
    assert int(alaw_encode(x)[0]) == alaw


def test_encode_of_decode_is_identity() -> None:
    ulaw_round = ulaw_encode(ulaw_decode(ALL_CODES))
    # μ-law's two zeros: "negative zero" 0x7F decodes to 0, which encodes as 0xFF.
    expected = ALL_CODES.copy()
    expected[0x7F] = 0xFF
    assert np.array_equal(ulaw_round, expected)
    assert np.array_equal(alaw_encode(alaw_decode(ALL_CODES)), ALL_CODES)


@pytest.mark.parametrize(
    ("encode", "table"), [(ulaw_encode, ULAW_DECODE_TABLE), (alaw_encode, ALAW_DECODE_TABLE)]
)
def test_encoder_picks_a_neighbouring_level_and_is_monotonic(
    encode: Callable[[np.ndarray], np.ndarray], table: np.ndarray
) -> None:
    decoded = table[encode(ALL_SAMPLES)].astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)  # quantisation is monotonic
    levels = np.unique(table.astype(np.int32))
    # Inside the range of the levels, every sample maps to one of the two levels around it.
    samples = ALL_SAMPLES.astype(np.int32)
    inside = (samples >= levels[0]) & (samples <= levels[-1])
    x = samples[inside]
    upper = levels[np.searchsorted(levels, x)]
    lower = levels[np.maximum(np.searchsorted(levels, x, side="right") - 1, 0)]
    assert np.all((decoded[inside] == upper) | (decoded[inside] == lower))
    # ... and the relative error stays within half a step of the coarsest segment (< 4.5 %).
    big = np.abs(x) > 256
    assert np.max(np.abs(decoded[inside][big] - x[big]) / np.abs(x[big])) < 0.045


def test_bytes_and_arrays_both_decode() -> None:
    data = bytes(ALL_CODES)
    assert np.array_equal(ulaw_decode(data), ulaw_decode(ALL_CODES))
    assert alaw_decode(b"").shape == (0,)
    assert ulaw_decode(data).dtype == np.int16
    assert ulaw_encode(np.zeros(0, dtype=np.int16)).dtype == np.uint8
