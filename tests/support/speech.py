"""Speech test helpers: real synthetic speech (flite), resampling, silence and word error rate.

flite (Debian package ``flite``) makes the speech fixtures: its ``kal16`` voice is intelligible
enough to pocketsphinx to carry an honest WER assertion, fully offline and deterministic.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from palaver.audio.pcm import bytes_to_int16, int16_to_bytes
from palaver.audio.resample import StreamResampler

__all__ = ["SPEECH_RATE", "FliteMissing", "flite_speech", "silence", "to_rate", "word_error_rate"]

#: Sample rate of what :func:`flite_speech` returns.
SPEECH_RATE = 16000


class FliteMissing(RuntimeError):
    pass


def flite_speech(text: str, voice: str = "kal16") -> bytes:
    """Speak ``text`` with flite; return 16 kHz 16-bit mono PCM (little-endian).

    Raises :class:`FliteMissing` when the ``flite`` program is not installed.
    """
    return _flite_cached(text, voice)


@functools.lru_cache(maxsize=128)
def _flite_cached(text: str, voice: str) -> bytes:
    exe = shutil.which("flite")
    if exe is None:
        raise FliteMissing(
            "the `flite` program is needed to synthesise test speech but was not found on PATH; "
            "install it (Debian/Ubuntu: `apt-get install flite`)"
        )
    with tempfile.TemporaryDirectory(prefix="palaver-flite-") as tmp:
        out = Path(tmp) / "speech.wav"
        proc = subprocess.run(
            [exe, "-voice", voice, "-t", text, "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            detail = proc.stderr.strip()
            raise RuntimeError(f"flite failed (exit {proc.returncode}) for voice {voice!r}: {detail}")
        with wave.open(str(out), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise RuntimeError(f"flite wrote {8 * wav.getsampwidth()}-bit audio, expected 16-bit")
            rate, channels = wav.getframerate(), wav.getnchannels()
            frames = wav.readframes(wav.getnframes())
    samples = bytes_to_int16(frames)
    if channels > 1:
        samples = samples.reshape(-1, channels)[:, 0].copy()
    pcm = int16_to_bytes(samples)
    return pcm if rate == SPEECH_RATE else to_rate(pcm, rate, SPEECH_RATE)


def to_rate(pcm: bytes, src: int, dst: int) -> bytes:
    """Resample 16-bit mono PCM from ``src`` Hz to ``dst`` Hz with palaver's streaming resampler."""
    resampler = StreamResampler(src, dst)
    samples = bytes_to_int16(pcm)
    return int16_to_bytes(np.concatenate((resampler.process(samples), resampler.flush())))


def silence(ms: int, rate: int) -> bytes:
    """``ms`` milliseconds of 16-bit mono digital silence at ``rate`` Hz."""
    return bytes(2 * (rate * ms // 1000))


_PUNCTUATION = re.compile(r"[^\w\s']|(?<!\w)'|'(?!\w)")


def _words(text: str) -> list[str]:
    return _PUNCTUATION.sub(" ", text.lower()).split()


def word_error_rate(ref: str, hyp: str) -> float:
    """Word error rate: word-level Levenshtein distance / number of reference words.

    Case-insensitive, punctuation stripped (apostrophes inside words are kept: "don't").
    An empty reference gives 0.0 for an empty hypothesis, else 1.0.
    """
    r, h = _words(ref), _words(hyp)
    if not r:
        return 0.0 if not h else 1.0
    previous = list(range(len(h) + 1))
    for i, rw in enumerate(r, start=1):
        current = [i] + [0] * len(h)
        for j, hw in enumerate(h, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (rw != hw))
        previous = current
    return previous[-1] / len(r)
