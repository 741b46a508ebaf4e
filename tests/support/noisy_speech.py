"""A noisy-speech test signal with per-frame ground truth, for VAD and noise-reduction tests.

Built like the VAD comparison in the research notes: four flite utterances in four voices,
each preceded and followed by 1 s of digital silence, at 16 kHz. The ground truth of each
512-sample frame (32 ms, Silero's frame) is whether the *clean* signal's frame is above
-45 dBFS. Noise is then added at a stated SNR relative to the mean power of the speech
frames, from a seeded generator, so every figure computed on it is reproducible.

Conditions (``condition`` argument):

* ``"clean"``: no noise;
* ``"white_<snr>db"``: white Gaussian noise, e.g. ``"white_10db"``, ``"white_0db"``;
* ``"hum_hiss_<snr>db"``: 50 Hz mains hum (harmonics 1-5 at 1/k amplitude) plus white hiss
  at 0.3 of the hum's amplitude, e.g. ``"hum_hiss_5db"``.

SNRs may be negative (``"white_-5db"``).
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from palaver.audio.pcm import bytes_to_float32, float32_to_bytes
from tests.support.speech import SPEECH_RATE, flite_speech

__all__ = ["CONDITIONS", "FRAME", "UTTERANCES", "build_test_signal", "frames_of"]

#: Samples per ground-truth frame (Silero VAD's frame at 16 kHz).
FRAME = 512

#: (text, flite voice) of the utterances, in order.
UTTERANCES: tuple[tuple[str, str], ...] = (
    ("what is the weather in paris tomorrow", "kal16"),
    ("please book a table for two at seven", "slt"),
    ("my order number is four five six seven", "rms"),
    ("turn off the lights in the living room", "awb"),
)

#: The conditions the VAD benchmark reports.
CONDITIONS: tuple[str, ...] = ("clean", "white_10db", "white_0db", "hum_hiss_5db")

#: A clean frame above this level (dBFS) counts as speech in the ground truth.
TRUTH_DBFS = -45.0

_CONDITION = re.compile(r"^(white|hum_hiss)_(-?\d+(?:\.\d+)?)db$")


def _clean() -> npt.NDArray[np.float64]:
    gap = np.zeros(SPEECH_RATE, dtype=np.float64)
    parts = [gap]
    for text, voice in UTTERANCES:
        parts += [bytes_to_float32(flite_speech(text, voice=voice)).astype(np.float64), gap]
    clean = np.concatenate(parts)
    return clean[: len(clean) // FRAME * FRAME]


def frames_of(samples: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """View a signal as rows of ``FRAME`` samples (trailing partial frame dropped)."""
    n = len(samples) // FRAME * FRAME
    return samples[:n].reshape(-1, FRAME)


def build_test_signal(condition: str = "clean", seed: int = 0) -> tuple[bytes, list[bool]]:
    """Return ``(pcm, truth)``: 16 kHz 16-bit mono PCM and one speech flag per 512-sample frame.

    The PCM length is a whole number of frames. Raises ``ValueError`` for an unknown condition
    and :class:`tests.support.speech.FliteMissing` without flite.
    """
    clean = _clean()
    power = np.mean(frames_of(clean) ** 2, axis=1)
    truth = 10.0 * np.log10(power + 1e-12) > TRUTH_DBFS
    if condition == "clean":
        return float32_to_bytes(clean), [bool(t) for t in truth]
    match = _CONDITION.match(condition)
    if match is None:
        raise ValueError(
            f"unknown condition {condition!r}: use 'clean', 'white_<snr>db' or 'hum_hiss_<snr>db'"
        )
    kind, snr = match.group(1), float(match.group(2))
    rng = np.random.default_rng(seed)
    n = len(clean)
    noise = rng.standard_normal(n)
    if kind == "hum_hiss":
        t = np.arange(n) / SPEECH_RATE
        phase = rng.uniform(0.0, 2.0 * np.pi)
        hum = sum(np.sin(2.0 * np.pi * 50.0 * k * t + phase) / k for k in range(1, 6))
        noise = hum + 0.3 * noise
    speech_power = float(np.mean(power[truth]))
    noise *= np.sqrt(speech_power / np.mean(noise**2) / 10.0 ** (snr / 10.0))
    return float32_to_bytes(clean + noise), [bool(t) for t in truth]
