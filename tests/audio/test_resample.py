import numpy as np
import numpy.typing as npt
import pytest

from palaver.audio.resample import StreamResampler, resample

RATE_PAIRS = [
    (24000, 16000),
    (22050, 24000),
    (8000, 16000),
    (8000, 24000),
    (16000, 24000),
    (48000, 16000),
    (16000, 8000),
    (24000, 8000),
    (16000, 22050),
]
DOWN_PAIRS = [(s, d) for s, d in RATE_PAIRS if d < s]


def tone(freq: float, rate: int, seconds: float = 0.5, amplitude: float = 10000.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def steady(y: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """The middle of a signal, away from the start-up and end transients."""
    n = len(y)
    return y[n // 8 : n - n // 8].astype(np.float64)


def tone_fit(y: npt.NDArray[np.float64], freq: float, rate: int) -> tuple[float, float]:
    """Least-squares fit of a tone at ``freq``: (its amplitude, RMS of what is left)."""
    t = np.arange(len(y)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t), np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    residual = y - basis @ coef
    return float(np.hypot(coef[0], coef[1])), float(np.sqrt(np.mean(residual**2)))


def random_chunks(x: npt.NDArray[np.int16], rng: np.random.Generator) -> list[npt.NDArray[np.int16]]:
    chunks, i = [], 0
    while i < len(x):
        n = int(rng.choice([0, 1, 2, 3, 7, 160, 320, 441, 480, 999]))
        chunks.append(x[i : i + n])
        i += n
    return chunks


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_chunking_does_not_change_the_output(src: int, dst: int) -> None:
    rng = np.random.default_rng(src + dst)
    x = rng.integers(-30000, 30000, size=src // 4).astype(np.int16)
    whole = resample(x, src, dst)
    r = StreamResampler(src, dst)
    pieces = [r.process(c) for c in random_chunks(x, rng)]
    pieces.append(r.flush())
    chunked = np.concatenate(pieces)
    assert chunked.dtype == np.int16
    assert len(chunked) == len(whole)
    assert np.abs(chunked.astype(np.int32) - whole.astype(np.int32)).max() <= 1


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_output_length_is_ceil_of_the_ratio(src: int, dst: int) -> None:
    for n in (0, 1, 2, 5, 147, 1000, 2205):
        x = np.full(n, 1000, dtype=np.int16)
        assert len(resample(x, src, dst)) == -(-n * dst // src), n


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_in_band_tones_keep_their_amplitude_and_stay_clean(src: int, dst: int) -> None:
    nyquist = min(src, dst) / 2
    for freq in (440.0, 1000.0, 0.8 * nyquist):
        y = steady(resample(tone(freq, src), src, dst))
        amplitude, residual = tone_fit(y, freq, dst)
        assert abs(20 * np.log10(amplitude / 10000.0)) < 1.0, freq
        # Aliases and images of the tone, and everything else, are 40 dB or more below it.
        assert 20 * np.log10(residual / (amplitude / np.sqrt(2))) < -40.0, freq


@pytest.mark.parametrize(("src", "dst"), DOWN_PAIRS)
def test_tones_above_the_new_nyquist_are_attenuated(src: int, dst: int) -> None:
    for freq in (1.05 * dst / 2, 1.3 * dst / 2, 0.45 * src):
        y = steady(resample(tone(freq, src), src, dst))
        rms = np.sqrt(np.mean(y**2))
        assert 20 * np.log10(max(rms, 1e-9) / (10000.0 / np.sqrt(2))) <= -40.0, freq


def test_time_alignment() -> None:
    # An impulse comes out where it went in (the filter delay is compensated).
    x = np.zeros(2400, dtype=np.int16)
    x[1200] = 20000
    y = resample(x, 24000, 16000)
    assert int(np.argmax(y)) == 800
    y = resample(x, 24000, 48000)
    assert int(np.argmax(y)) == 2400


def test_equal_rates_are_the_identity() -> None:
    r = StreamResampler(16000, 16000)
    x = np.random.default_rng(1).integers(-32768, 32767, size=1000).astype(np.int16)
    y = r.process(x)
    assert np.array_equal(y, x)
    assert y is not x
    assert r.flush().size == 0


def test_process_holds_back_only_the_look_ahead() -> None:
    r = StreamResampler(24000, 16000)
    out = r.process(np.zeros(480, dtype=np.int16))
    # 20 ms in, almost 20 ms out: only about delay_samples of input is held back.
    assert 320 - out.size <= r.delay_samples * 2 // 3 + 1
    assert r.delay_samples * 1000 / 24000 < 3.0  # a few ms of latency at most


def test_flush_resets_the_stream() -> None:
    x = tone(1000.0, 24000, 0.1)
    r = StreamResampler(24000, 16000)
    first = np.concatenate((r.process(x), r.flush()))
    second = np.concatenate((r.process(x), r.flush()))
    assert np.array_equal(first, second)


def test_loud_signals_clip_instead_of_wrapping() -> None:
    x = np.tile(np.array([32767] * 20 + [-32768] * 20, dtype=np.int16), 50)
    y = resample(x, 8000, 16000).astype(np.int32)
    # The square wave overshoots (Gibbs); it must saturate, not wrap around.
    assert y.max() == 32767 and y.min() == -32768
    signs = np.sign(np.repeat(x.astype(np.int32), 2))[10:-10]
    assert np.mean(np.sign(y[10:-10]) == signs) > 0.9


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        StreamResampler(0, 16000)
    with pytest.raises(ValueError):
        StreamResampler(16000, 24000).process(np.zeros((2, 2), dtype=np.int16))


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (8000, 24000)])
def test_integer_upsampling_matches_the_polyphase_definition(src: int, dst: int) -> None:
    """The correlation fast path computes exactly y[j] = sum_d x[j // L + d] * table[j % L][d]."""
    from palaver.audio.resample import _design

    up = dst // src
    table, taps = _design(src, dst, up)
    half = taps // 2
    x = np.random.default_rng(7).integers(-20000, 20000, size=400).astype(np.int16)
    y = resample(x, src, dst).astype(np.int64)
    padded = np.concatenate([np.zeros(half - 1), x.astype(np.float64), np.zeros(half)])
    expected = [
        np.dot(padded[j // up : j // up + taps], table[j % up].astype(np.float64)) for j in range(len(y))
    ]
    assert np.abs(y - np.rint(np.clip(expected, -32768, 32767))).max() <= 1
