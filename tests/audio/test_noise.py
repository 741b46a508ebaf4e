"""NoiseReducer: streaming framing, noise attenuation, speech kept intact, Silero accuracy in noise."""

from __future__ import annotations

import numpy as np
import pytest

from palaver.audio.noise import NoiseReducer, NoiseReductionMode, reduce_noise
from palaver.backends.stt.pocketsphinx import PocketsphinxSTT
from palaver.backends.vad.silero import SileroVAD
from tests.support.noisy_speech import FRAME, build_test_signal
from tests.support.speech import flite_speech, silence, word_error_rate

MODES: list[NoiseReductionMode] = ["near_field", "far_field"]
WEATHER = "what is the weather in paris tomorrow"
LIGHTS = "turn off the lights in the living room"


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, "<i2").astype(np.float64)


def white_noise(rms: float, seconds: float, seed: int = 0) -> bytes:
    x = np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * rms
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def chunked(reducer: NoiseReducer, pcm: bytes, sizes: list[int]) -> bytes:
    out, pos, i = [], 0, 0
    while pos < len(pcm):
        size = sizes[i % len(sizes)]
        out.append(reducer.process(pcm[pos : pos + size]))
        pos += size
        i += 1
    out.append(reducer.flush())
    return b"".join(out)


def attenuation_db(before: bytes, after: bytes, skip_s: float = 0.5) -> float:
    skip = int(16000 * skip_s)
    x, y = samples(before)[skip:], samples(after)[skip:]
    return float(10.0 * np.log10(np.mean(x**2) / max(np.mean(y**2), 1e-9)))


@pytest.mark.parametrize("mode", MODES)
def test_any_chunking_gives_the_same_output_of_the_same_length(mode: NoiseReductionMode) -> None:
    pcm = silence(200, 16000) + flite_speech(WEATHER) + white_noise(300.0, 0.7)
    whole = reduce_noise(pcm, mode)
    assert len(whole) == len(pcm)
    rng = np.random.default_rng(7)
    for sizes in ([640], [2], [1], [1023, 3, 4097], [int(s) for s in rng.integers(1, 3000, 50)], [len(pcm)]):
        assert chunked(NoiseReducer(mode), pcm, sizes) == whole, sizes


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 511, 512, 513, 16001])
def test_total_length_is_preserved_for_any_length(n: int) -> None:
    reducer = NoiseReducer("near_field")
    pcm = white_noise(1000.0, n / 16000, seed=n)[: 2 * n]
    out = chunked(reducer, pcm, [94])
    assert len(out) == len(pcm)
    # The reducer is reusable after flush.
    assert len(reducer.process(pcm) + reducer.flush()) == len(pcm)


def test_output_lags_by_less_than_one_frame() -> None:
    reducer = NoiseReducer("near_field")
    pcm = white_noise(1000.0, 2.0)
    fed = out = 0
    for size in [2, 640, 6, 1022, 320, 4096, 2, 640] * 8:
        chunk = pcm[fed : fed + size]
        fed += len(chunk)
        out += len(reducer.process(chunk))
        assert fed - reducer.frame_samples * 2 < out <= fed
    assert out + len(reducer.flush()) == fed


def test_output_is_time_aligned_with_the_input() -> None:
    pcm = silence(300, 16000) + flite_speech(LIGHTS) + silence(300, 16000)
    x, y = samples(pcm), samples(reduce_noise(pcm, "near_field"))
    lags = range(-300, 301, 20)
    corr = [float(np.dot(x[300:-300], np.roll(y, lag)[300:-300])) for lag in lags]
    assert list(lags)[int(np.argmax(corr))] == 0
    assert corr[15] / np.sqrt(np.dot(x, x) * np.dot(y, y)) > 0.95  # clean speech is barely changed


@pytest.mark.parametrize("mode", MODES)
def test_stationary_white_noise_is_attenuated_by_10_db(mode: NoiseReductionMode) -> None:
    noise = white_noise(1000.0, 4.0)  # about -30 dBFS, no speech
    assert attenuation_db(noise, reduce_noise(noise, mode)) >= 10.0


@pytest.mark.parametrize("mode", MODES)
def test_noise_after_a_muted_microphone_and_a_noise_step_are_learnt(mode: NoiseReductionMode) -> None:
    muted_then_noise = silence(1000, 16000) + white_noise(1000.0, 6.0)
    out = reduce_noise(muted_then_noise, mode)
    assert attenuation_db(muted_then_noise[-32000:], out[-32000:], skip_s=0) >= 10.0
    quiet_then_loud = white_noise(100.0, 2.0, seed=1) + white_noise(1000.0, 4.0, seed=2)
    out = reduce_noise(quiet_then_loud, mode)
    assert attenuation_db(quiet_then_loud[-32000:], out[-32000:], skip_s=0) >= 10.0


def test_far_field_attenuates_noise_more_than_near_field() -> None:
    noise = white_noise(1000.0, 4.0, seed=3)
    near = attenuation_db(noise, reduce_noise(noise, "near_field"))
    far = attenuation_db(noise, reduce_noise(noise, "far_field"))
    assert far >= near + 3.0, (near, far)


@pytest.mark.parametrize("mode", MODES)
def test_silence_in_silence_out(mode: NoiseReductionMode) -> None:
    # pytest turns numpy's RuntimeWarnings (division by zero, overflow) into errors.
    assert reduce_noise(silence(1000, 16000), mode) == silence(1000, 16000)
    # Speech after silence, silence after loud clipping noise: no NaN, no blow-up, back to silence.
    loud = np.where(np.random.default_rng(0).random(16000) < 0.5, -32768, 32767).astype("<i2").tobytes()
    pcm = silence(500, 16000) + loud + silence(1000, 16000)
    out = samples(reduce_noise(pcm, mode))
    assert np.all(np.isfinite(out))
    assert np.abs(out[-8000:]).max() == 0.0
    x = samples(pcm)
    assert np.mean(out[8000:24000] ** 2) <= np.mean(x[8000:24000] ** 2)  # never amplified


@pytest.fixture(scope="module")
def stt() -> PocketsphinxSTT:
    backend = PocketsphinxSTT()
    backend.warm_up()
    return backend


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", [WEATHER, LIGHTS])
def test_clean_speech_still_transcribes(stt: PocketsphinxSTT, mode: NoiseReductionMode, text: str) -> None:
    pcm = silence(300, 16000) + flite_speech(text) + silence(300, 16000)
    reducer = NoiseReducer(mode)
    stream = stt.open_stream(language="en")
    for i in range(0, len(pcm), 640):
        stream.push(reducer.process(pcm[i : i + 640]))
    stream.push(reducer.flush())
    result = stream.finish()
    assert word_error_rate(text, result.text) <= 0.15, result.text


def silero_accuracy(vad: SileroVAD, pcm: bytes, truth: list[bool]) -> float:
    stream = vad.open_stream()
    size = 2 * FRAME
    hits = [(stream.probability(pcm[i * size : (i + 1) * size]) >= 0.5) == t for i, t in enumerate(truth)]
    return sum(hits) / len(hits)


@pytest.mark.parametrize("condition", ["white_5db", "hum_hiss_5db"])
def test_near_field_does_not_hurt_silero_at_5_db_snr(condition: str) -> None:
    vad = SileroVAD()
    pcm, truth = build_test_signal(condition, seed=0)
    before = silero_accuracy(vad, pcm, truth)
    after = silero_accuracy(vad, reduce_noise(pcm, "near_field"), truth)
    assert after >= before, (before, after)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="near_field"):
        NoiseReducer("studio")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sample rate"):
        NoiseReducer("near_field", sample_rate=4000)
    reducer = NoiseReducer("near_field")
    reducer.process(b"\x01\x02\x03")
    with pytest.raises(ValueError, match="odd number of bytes"):
        reducer.flush()
    assert len(reducer.process(b"\x00" * 64) + reducer.flush()) == 64  # usable again


@pytest.mark.parametrize("rate", [8000, 24000, 48000])
def test_other_sample_rates(rate: int) -> None:
    reducer = NoiseReducer("near_field", sample_rate=rate)
    noise = np.random.default_rng(1).standard_normal(rate * 3) * 1000.0
    pcm = np.rint(noise).astype("<i2").tobytes()
    out = reducer.process(pcm) + reducer.flush()
    assert len(out) == len(pcm)
    y = samples(out)[rate // 2 :]
    assert 10.0 * np.log10(np.mean(noise[rate // 2 :] ** 2) / np.mean(y**2)) >= 10.0
