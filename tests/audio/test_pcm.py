import numpy as np
import pytest

from palaver.audio.pcm import (
    bytes_to_float32,
    bytes_to_int16,
    duration_ms,
    float32_to_bytes,
    float32_to_int16,
    int16_to_bytes,
)


def test_bytes_are_little_endian() -> None:
    assert bytes_to_int16(b"\x01\x00\xff\x7f\x00\x80").tolist() == [1, 32767, -32768]
    assert int16_to_bytes(np.array([1, -1, 256], dtype=np.int16)) == b"\x01\x00\xff\xff\x00\x01"


def test_round_trip_and_writable() -> None:
    samples = np.arange(-32768, 32768, 7, dtype=np.int16)
    decoded = bytes_to_int16(int16_to_bytes(samples))
    assert np.array_equal(decoded, samples)
    decoded[0] = 5  # a fresh array, not a read-only view of the bytes


def test_odd_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        bytes_to_int16(b"\x00\x00\x00")


def test_float_conversions_scale_and_clip() -> None:
    assert bytes_to_float32(int16_to_bytes(np.array([-32768, 0, 16384], dtype=np.int16))).tolist() == [
        -1.0,
        0.0,
        0.5,
    ]
    assert float32_to_int16(np.array([2.0, -2.0, 0.25, 1.0], dtype=np.float32)).tolist() == [
        32767,
        -32768,
        8192,
        32767,
    ]
    assert float32_to_bytes(np.array([-1.0], dtype=np.float64)) == b"\x00\x80"


def test_duration_ms() -> None:
    assert duration_ms(48000, 24000) == 1000.0
    assert duration_ms(640, 16000) == 20.0
    assert duration_ms(3, 16000) == 1000.0 / 16000  # whole samples only
    with pytest.raises(ValueError):
        duration_ms(10, 0)
