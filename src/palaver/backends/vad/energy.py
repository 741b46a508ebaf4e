"""Energy VAD: frame level (dBFS) against an adaptive noise floor. No model, a few µs per frame.

A fallback for clean audio (tests, or users without onnxruntime): it cannot tell speech from
loud noise. The floor starts at the first frame's level (a stream is assumed to start
without speech), falls quickly to quieter frames and rises slowly (0.2 dB per frame) towards
louder ones, so it follows a changing background but not speech. A frame is speech when it
is ``margin_db`` above the floor and above ``min_dbfs``; the probability is a logistic of
the distance to that threshold (0.5 exactly at it, ``softness_db`` sets the slope).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["EnergyStream", "EnergyVAD"]

_LE_INT16 = np.dtype("<i2")
#: Frame power (int16 units squared) that counts as -inf dBFS.
_POWER_FLOOR = 32768.0**2 * 1e-12


class EnergyVAD:
    """:class:`~palaver.backends.base.VoiceActivityDetector` on frame energy, 16 kHz, 512-sample frames."""

    name = "energy"

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        frame_samples: int = 512,
        margin_db: float = 6.0,
        min_dbfs: float = -50.0,
        rise_db: float = 0.2,
        softness_db: float = 1.0,
    ) -> None:
        if sample_rate <= 0 or frame_samples <= 0:
            raise ValueError("sample_rate and frame_samples must be positive")
        if softness_db <= 0:
            raise ValueError("softness_db must be positive")
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self.margin_db = margin_db
        self.min_dbfs = min_dbfs
        self.rise_db = rise_db
        self.softness_db = softness_db

    def open_stream(self) -> EnergyStream:
        return EnergyStream(self)


class EnergyStream:
    """:class:`~palaver.backends.base.VadStream` of :class:`EnergyVAD`. Not thread-safe."""

    def __init__(self, vad: EnergyVAD) -> None:
        self._vad = vad
        self._bytes = 2 * vad.frame_samples
        self._floor: float | None = None

    @property
    def floor_dbfs(self) -> float | None:
        """The current noise floor (``None`` before the first frame)."""
        return self._floor

    def level_dbfs(self, frame: bytes) -> float:
        """Level of one frame in dBFS (full-scale square wave = 0 dBFS; silence = -120)."""
        if len(frame) != self._bytes:
            raise ValueError(
                f"energy VAD takes frames of {self._vad.frame_samples} samples ({self._bytes} bytes), "
                f"got {len(frame)} bytes"
            )
        samples = np.frombuffer(frame, dtype=_LE_INT16).astype(np.float64)
        power = float(np.dot(samples, samples)) / len(samples)
        return 10.0 * math.log10(max(power, _POWER_FLOOR) / 32768.0**2)

    def probability(self, frame: bytes) -> float:
        """Speech probability of exactly ``frame_samples`` 16-bit mono samples."""
        vad = self._vad
        db = self.level_dbfs(frame)
        floor = self._floor
        if floor is None:
            floor = db
        elif db > floor:
            floor = min(db, floor + vad.rise_db)  # rise slowly
        else:
            floor = 0.7 * floor + 0.3 * db  # fall fast
        self._floor = floor
        threshold = max(floor + vad.margin_db, vad.min_dbfs)
        x = (db - threshold) / vad.softness_db
        if x >= 0:
            return 1.0 / (1.0 + math.exp(-x))
        e = math.exp(x)
        return e / (1.0 + e)

    def reset(self) -> None:
        """Forget the noise floor."""
        self._floor = None
