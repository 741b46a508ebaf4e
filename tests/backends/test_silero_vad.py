"""SileroVAD (silero_vad.onnx from the silero-vad wheel, on onnxruntime) and the EnergyVAD fallback."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from palaver.backends.base import BackendUnavailable, VadStream, VoiceActivityDetector
from palaver.backends.vad.energy import EnergyVAD
from palaver.backends.vad.silero import SileroVAD, find_model
from tests.support.speech import flite_speech, silence

FRAME_BYTES = 1024
INSTALL = "pip install --no-deps silero-vad"


def frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def probabilities(stream: VadStream, pcm: bytes) -> list[float]:
    return [stream.probability(f) for f in frames(pcm)]


def frame_dbfs(pcm: bytes) -> np.ndarray:
    x = np.frombuffer(pcm[: len(pcm) // FRAME_BYTES * FRAME_BYTES], "<i2").astype(np.float64) / 32768.0
    return 10.0 * np.log10(np.mean(x.reshape(-1, 512) ** 2, axis=1) + 1e-12)


def white_noise(dbfs: float, ms: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(16 * ms) * 32768.0 * 10.0 ** (dbfs / 20.0)
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


@pytest.fixture(scope="module")
def speech() -> bytes:
    return silence(500, 16000) + flite_speech("what is the weather in paris tomorrow") + silence(500, 16000)


def test_implements_the_protocol(vad: SileroVAD) -> None:
    backend: VoiceActivityDetector = vad
    assert (backend.name, backend.sample_rate, backend.frame_samples) == ("silero", 16000, 512)
    assert vad.model_path == find_model()
    assert vad.model_path.name == "silero_vad.onnx"


def test_model_located_without_importing_the_package() -> None:
    sys.modules.pop("silero_vad", None)
    SileroVAD()
    assert "silero_vad" not in sys.modules  # its __init__ imports torch
    assert "torch" not in sys.modules


def test_speech_is_detected(vad: SileroVAD, speech: bytes) -> None:
    probs = np.array(probabilities(vad.open_stream(), speech))
    loud = frame_dbfs(speech)[: len(probs)] > -35.0
    assert loud.sum() > 20
    assert np.mean(probs[loud] >= 0.5) >= 0.9, probs.round(2)
    assert probs.max() > 0.95
    assert probs[:15].max() < 0.1  # the leading 0.5 s of silence


def test_silence_and_quiet_noise_are_not_speech(vad: SileroVAD) -> None:
    assert max(probabilities(vad.open_stream(), silence(1000, 16000))) < 0.1
    noise = np.array(probabilities(vad.open_stream(), white_noise(-30.0, 3000)))
    assert noise.max() < 0.3
    assert noise.mean() < 0.1


def test_streams_keep_their_own_state(vad: SileroVAD, speech: bytes) -> None:
    quiet = white_noise(-30.0, len(speech) // 32, seed=1)
    alone_speech = probabilities(vad.open_stream(), speech)
    alone_quiet = probabilities(vad.open_stream(), quiet)
    a, b = vad.open_stream(), vad.open_stream()
    interleaved = [
        (a.probability(x), b.probability(y)) for x, y in zip(frames(speech), frames(quiet), strict=True)
    ]
    assert [p for p, _ in interleaved] == alone_speech
    assert [q for _, q in interleaved] == alone_quiet
    # Each stream's recurrent state matters: the same frame scores differently after speech.
    fresh = vad.open_stream()
    assert probabilities(a, quiet[:FRAME_BYTES]) != probabilities(fresh, quiet[:FRAME_BYTES])


def test_reset_forgets_the_past(vad: SileroVAD, speech: bytes) -> None:
    stream = vad.open_stream()
    first = probabilities(stream, speech)
    stream.reset()
    assert probabilities(stream, speech) == first


@pytest.mark.parametrize("size", [0, 1, 1022, 1023, 1025, 1026, 2048])
def test_wrong_frame_size_is_rejected(vad: SileroVAD, size: int) -> None:
    with pytest.raises(ValueError, match="512 samples"):
        vad.open_stream().probability(bytes(size))


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match=INSTALL) as info:
        SileroVAD(model_path=tmp_path / "nope.onnx")
    assert "nope.onnx" in str(info.value)


def test_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "silero_vad" else real(name, *a)
    )
    with pytest.raises(BackendUnavailable, match=INSTALL):
        SileroVAD()


def test_missing_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(BackendUnavailable, match="onnxruntime is not installed") as info:
        SileroVAD()
    assert INSTALL in str(info.value)


def test_not_a_silero_model(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not an onnx file")
    with pytest.raises(BackendUnavailable, match="could not load"):
        SileroVAD(model_path=bogus)


# --------------------------------------------------------------------------- energy fallback


def test_energy_vad_implements_the_protocol() -> None:
    backend: VoiceActivityDetector = EnergyVAD()
    assert (backend.name, backend.sample_rate, backend.frame_samples) == ("energy", 16000, 512)


def test_energy_vad_detects_speech_after_silence(speech: bytes) -> None:
    probs = np.array(probabilities(EnergyVAD().open_stream(), speech))
    loud = frame_dbfs(speech)[: len(probs)] > -35.0
    assert np.all(probs[loud] > 0.5)
    assert probs[:15].max() < 0.01
    assert probs[-10:].max() < 0.01  # trailing silence


def test_energy_vad_follows_a_steady_noise_floor() -> None:
    stream = EnergyVAD().open_stream()
    noise = white_noise(-35.0, 2000)
    probs = probabilities(stream, noise)
    assert max(probs) < 0.5  # stationary noise never crosses floor + 6 dB
    floor = stream.floor_dbfs  # type: ignore[attr-defined]
    assert floor is not None and -38.0 < floor < -34.0
    tone = (np.sin(np.arange(512) * 0.2) * 32767 * 10 ** (-15 / 20)).astype("<i2").tobytes()
    assert stream.probability(tone) > 0.99  # 20 dB above the floor
    stream.reset()
    assert stream.probability(tone) < 0.5  # the first frame sets the floor


def test_energy_vad_rejects_a_wrong_frame_size() -> None:
    with pytest.raises(ValueError, match="512 samples"):
        EnergyVAD().open_stream().probability(bytes(1000))
