from collections.abc import Callable

import numpy as np
import pytest

from palaver.audio.formats import (
    FORMAT_TYPES,
    InputDecoder,
    OutputEncoder,
    wire_bytes_per_second,
    wire_duration_ms,
    wire_rate,
)
from palaver.audio.pcm import bytes_to_int16, int16_to_bytes


def tone_pcm(freq: float, rate: int, seconds: float, amplitude: float = 8000.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return int16_to_bytes(np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16))


def correlation_with_tone(pcm: bytes, freq: float, rate: int) -> tuple[float, float]:
    """(peak amplitude of the best-fitting tone, normalised correlation) over the middle of the signal."""
    y = bytes_to_int16(pcm).astype(np.float64)
    y = y[len(y) // 8 : len(y) - len(y) // 8]
    t = np.arange(len(y)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    fit = basis @ coef
    return float(np.hypot(*coef)), float(np.dot(fit, y) / (np.linalg.norm(fit) * np.linalg.norm(y)))


def feed(convert: Callable[[bytes], bytes], data: bytes, sizes: list[int]) -> bytes:
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(convert(data[i : i + n]))
        i, k = i + n, k + 1
    return b"".join(out)


def test_wire_format_facts() -> None:
    assert set(FORMAT_TYPES) == {"audio/pcm", "audio/pcmu", "audio/pcma"}
    assert wire_rate("audio/pcm") == 24000
    assert wire_rate("audio/pcmu") == wire_rate("audio/pcma") == 8000
    assert wire_bytes_per_second("audio/pcm") == 48000
    assert wire_bytes_per_second("audio/pcmu") == wire_bytes_per_second("audio/pcma") == 8000
    assert wire_duration_ms("audio/pcm", 960) == 20.0
    assert wire_duration_ms("audio/pcm", 961) == 20.0
    assert wire_duration_ms("audio/pcmu", 160) == 20.0
    assert wire_duration_ms("audio/pcma", 8000) == 1000.0


@pytest.mark.parametrize("bad", ["audio/opus", "pcm16", "", "g711_ulaw"])
def test_unknown_format_types_are_rejected(bad: str) -> None:
    for call in (wire_rate, wire_bytes_per_second):
        with pytest.raises(ValueError, match="unknown audio format type"):
            call(bad)
    with pytest.raises(ValueError, match="unknown audio format type"):
        wire_duration_ms(bad, 10)
    with pytest.raises(ValueError, match="unknown audio format type"):
        InputDecoder(bad, 16000)
    with pytest.raises(ValueError, match="unknown audio format type"):
        OutputEncoder(bad, 16000)


def test_pcm24k_input_decodes_to_16k_with_odd_byte_chunks() -> None:
    wire = tone_pcm(1000.0, 24000, 0.5)
    dec = InputDecoder("audio/pcm", 16000)
    pcm16k = feed(dec.decode, wire, [1, 961, 3, 480, 7]) + dec.flush()
    assert len(pcm16k) == 2 * 8000  # 0.5 s at 16 kHz, exactly
    amplitude, corr = correlation_with_tone(pcm16k, 1000.0, 16000)
    assert corr > 0.999
    assert abs(amplitude - 8000) < 100
    # The same bytes in one piece give the same samples (to within 1 LSB).
    one = InputDecoder("audio/pcm", 16000)
    whole = bytes_to_int16(one.decode(wire) + one.flush()).astype(np.int32)
    assert np.abs(whole - bytes_to_int16(pcm16k)).max() <= 1


def test_pcm_round_trip_24k_to_16k_and_back() -> None:
    wire = tone_pcm(700.0, 24000, 0.4)
    dec = InputDecoder("audio/pcm", 16000)
    enc = OutputEncoder("audio/pcm", 16000)
    back = feed(enc.encode, dec.decode(wire) + dec.flush(), [640]) + enc.flush()
    assert len(back) == len(wire)
    a = bytes_to_int16(wire).astype(np.int32)[500:-500]
    b = bytes_to_int16(back).astype(np.int32)[500:-500]
    assert np.abs(a - b).max() < 40  # 8000-amplitude tone, two passes of the filter


def test_pcm_at_the_wire_rate_passes_through_unchanged() -> None:
    wire = tone_pcm(300.0, 24000, 0.1) + b"\x01"
    enc = OutputEncoder("audio/pcm", 24000)
    out = feed(enc.encode, wire, [3, 5, 1000])
    assert out == wire[:-1]
    assert enc.flush() == b""
    dec = InputDecoder("audio/pcm", 24000)
    assert feed(dec.decode, wire, [1, 2, 333]) == wire[:-1]


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
def test_g711_input_lengths_and_durations(fmt: str) -> None:
    frame = bytes(range(160))  # 20 ms of G.711 at 8 kHz
    assert wire_duration_ms(fmt, len(frame)) == 20.0
    dec = InputDecoder(fmt, 16000)
    out = b"".join(dec.decode(frame) for _ in range(50)) + dec.flush()
    assert len(out) == 50 * 320 * 2  # one second at 16 kHz
    same_rate = InputDecoder(fmt, 8000)
    assert len(same_rate.decode(frame)) == 320  # one PCM16 sample per byte, no look-ahead held back


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
@pytest.mark.parametrize("engine_rate", [16000, 24000, 22050])
def test_g711_output_then_input_keeps_speech_band_audio(fmt: str, engine_rate: int) -> None:
    pcm = tone_pcm(1000.0, engine_rate, 0.5)
    enc = OutputEncoder(fmt, engine_rate)
    wire = feed(enc.encode, pcm, [2 * engine_rate // 50, 3]) + enc.flush()
    assert len(wire) == 4000  # 0.5 s at 8000 bytes/s
    assert wire_duration_ms(fmt, len(wire)) == 500.0
    dec = InputDecoder(fmt, engine_rate)
    back = dec.decode(wire) + dec.flush()
    assert len(back) == len(pcm)
    amplitude, corr = correlation_with_tone(back, 1000.0, engine_rate)
    assert corr > 0.99  # G.711 gives about 38 dB SNR
    assert abs(20 * np.log10(amplitude / 8000)) < 0.5


def test_g711_silence() -> None:
    silence = bytes(320 * 2)
    assert OutputEncoder("audio/pcmu", 8000).encode(silence) == b"\xff" * 320
    assert OutputEncoder("audio/pcma", 8000).encode(silence) == b"\xd5" * 320
    assert set(InputDecoder("audio/pcmu", 8000).decode(b"\xff" * 10)) == {0}
