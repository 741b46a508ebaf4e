"""Turn detection: VAD frame probabilities in, ``speech_started`` / ``speech_stopped`` out.

Sans-I/O: no clock, no asyncio. Every time here is a position in the session's **input
audio** in milliseconds (the ``audio_start_ms`` / ``audio_end_ms`` axis of the wire events),
passed in by the caller with each frame, so a test drives it on virtual time.

The caller runs a VAD model (Silero) over the appended audio and pushes one frame at a time:
``push(probability, frame_end_ms)`` for a frame of ``frame_ms`` ending at ``frame_end_ms``.

**Speech start** (both modes). A frame is *speech* when ``probability >= threshold``.
Speech starts once consecutive speech frames span ``min_speech_ms`` (default 64 ms, two
32 ms frames, so a click is ignored). ``SpeechStarted.audio_start_ms`` is the onset (start
of the first speech frame of the run) minus ``prefix_padding_ms``, clamped at 0.

**Barge-in guard.** While the assistant's audio is audible (``assistant_speaking=True``),
its echo may reach the microphone. Then a frame counts as speech only when
``probability >= threshold + threshold_boost`` (capped at 1.0) and the run must span
``max(min_speech_ms, guard.min_speech_ms)`` (default 250 ms). ``BargeInGuard(0, 0)`` turns
the guard off.

**Speech stop** (both modes). Once in speech, a hysteresis keeps speech alive through soft
frames: a frame at or above ``release = max(threshold - 0.15, 0.05)`` continues the speech
and moves its end to the frame's end; a frame below ``release`` is silence. Speech stops when
the silence since the end of the last speech frame reaches the *required silence*;
``SpeechStopped.audio_end_ms`` is that end of the last speech frame (the true end of speech,
not the end of the silence). A shorter pause does not stop speech.

``server_vad``: required silence = ``silence_duration_ms``; ``threshold`` and
``prefix_padding_ms`` from the config.

``semantic_vad``: ``threshold`` 0.5 and ``prefix_padding_ms`` 300 (OpenAI exposes neither).
The required silence depends on ``eagerness`` and on how finished the words so far sound,
``c = end_of_turn.completeness(transcript)`` (transcript given by :meth:`update_transcript`;
with no transcript ``RuleBasedEndOfTurn`` answers 0.5)::

    required silence = min(base / c, max_wait)      (max_wait when c == 0)

    eagerness        base      max_wait (OpenAI's documented maximum)
    high             250 ms    2 s
    medium, auto     500 ms    4 s
    low             1000 ms    8 s

So a finished-sounding turn (c = 0.9 .. 1.0) ends after about ``base``, an unknown one
(c = 0.5) after ``2 × base``, a clearly unfinished one ("... and", c = 0.1) after
``10 × base``, which the cap turns into the maximum wait. The transcript is read at every
frame, so a late transcript update ending in a complete clause can end a pause at once.

``configure()`` applies new parameters from the next frame (OpenAI applies turn_detection
changes immediately); ``reset()`` forgets the current speech (buffer cleared or committed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from palaver.protocol.audio_config import SemanticVad, ServerVad

from .end_of_turn import EndOfTurnModel, RuleBasedEndOfTurn

__all__ = [
    "DEFAULT_FRAME_MS",
    "DEFAULT_MIN_SPEECH_MS",
    "HYSTERESIS",
    "MIN_RELEASE_THRESHOLD",
    "SEMANTIC_BASE_SILENCE_MS",
    "SEMANTIC_MAX_WAIT_MS",
    "SEMANTIC_PREFIX_PADDING_MS",
    "SEMANTIC_THRESHOLD",
    "BargeInGuard",
    "SpeechStarted",
    "SpeechStopped",
    "TurnDetector",
    "TurnEvent",
    "semantic_silence_ms",
]

DEFAULT_FRAME_MS = 32.0
DEFAULT_MIN_SPEECH_MS = 64
#: Speech continues while the probability stays above ``threshold - HYSTERESIS`` ...
HYSTERESIS = 0.15
#: ... but never below this floor.
MIN_RELEASE_THRESHOLD = 0.05

SEMANTIC_THRESHOLD = 0.5
SEMANTIC_PREFIX_PADDING_MS = 300
Eagerness = Literal["low", "medium", "high", "auto"]
SEMANTIC_BASE_SILENCE_MS: dict[str, int] = {"high": 250, "medium": 500, "auto": 500, "low": 1000}
SEMANTIC_MAX_WAIT_MS: dict[str, int] = {"high": 2000, "medium": 4000, "auto": 4000, "low": 8000}

#: Tolerance for float frame times (frames of 20 ms at 16 kHz are exact, 1/3 ms ones are not).
_EPS = 1e-6


@dataclass(frozen=True)
class SpeechStarted:
    """``input_audio_buffer.speech_started``: speech began at ``audio_start_ms`` (padding included)."""

    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    """``input_audio_buffer.speech_stopped``: speech ended at ``audio_end_ms``."""

    audio_end_ms: int


TurnEvent = SpeechStarted | SpeechStopped


@dataclass(frozen=True)
class BargeInGuard:
    """Stricter start rules while the assistant is audible, so its echo does not interrupt it."""

    min_speech_ms: int = 250
    threshold_boost: float = 0.1

    def __post_init__(self) -> None:
        if self.min_speech_ms < 0:
            raise ValueError("min_speech_ms must be >= 0")
        if self.threshold_boost < 0:
            raise ValueError("threshold_boost must be >= 0")


def semantic_silence_ms(eagerness: Eagerness, completeness: float) -> int:
    """Silence ``semantic_vad`` waits for: ``min(base / completeness, max_wait)``, rounded."""
    base = SEMANTIC_BASE_SILENCE_MS[eagerness]
    cap = SEMANTIC_MAX_WAIT_MS[eagerness]
    c = min(max(completeness, 0.0), 1.0)
    if c * cap <= base:  # also c == 0
        return cap
    return round(base / c)


class TurnDetector:
    """Turns a stream of VAD frame probabilities into speech start/stop events."""

    def __init__(
        self,
        config: ServerVad | SemanticVad,
        *,
        frame_ms: float = DEFAULT_FRAME_MS,
        min_speech_ms: int = DEFAULT_MIN_SPEECH_MS,
        end_of_turn: EndOfTurnModel | None = None,
        barge_in: BargeInGuard | None = None,
    ) -> None:
        if not frame_ms > 0:
            raise ValueError("frame_ms must be > 0")
        if min_speech_ms < 0:
            raise ValueError("min_speech_ms must be >= 0")
        self._frame_ms = float(frame_ms)
        self._min_speech_ms = min_speech_ms
        self._end_of_turn: EndOfTurnModel = end_of_turn if end_of_turn is not None else RuleBasedEndOfTurn()
        self._guard = barge_in if barge_in is not None else BargeInGuard()
        self._config: ServerVad | SemanticVad = config
        self._transcript = ""
        self._completeness: float | None = None  # cached end_of_turn answer for _transcript
        self._last_frame_end: float | None = None
        # idle: the run of consecutive speech frames that may become speech
        self._run_start: float | None = None
        # in speech
        self._speech_start_ms: int | None = None
        self._speech_end: float = 0.0  # end of the last speech frame

    # ------------------------------------------------------------------ state

    @property
    def config(self) -> ServerVad | SemanticVad:
        return self._config

    @property
    def frame_ms(self) -> float:
        return self._frame_ms

    @property
    def in_speech(self) -> bool:
        return self._speech_start_ms is not None

    @property
    def speech_start_ms(self) -> int | None:
        """``audio_start_ms`` of the current speech (padding included), or ``None``."""
        return self._speech_start_ms

    @property
    def transcript(self) -> str:
        return self._transcript

    @property
    def threshold(self) -> float:
        cfg = self._config
        return cfg.threshold if isinstance(cfg, ServerVad) else SEMANTIC_THRESHOLD

    @property
    def prefix_padding_ms(self) -> int:
        cfg = self._config
        return cfg.prefix_padding_ms if isinstance(cfg, ServerVad) else SEMANTIC_PREFIX_PADDING_MS

    @property
    def release_threshold(self) -> float:
        """Below this probability a frame is silence once speech has started."""
        return max(self.threshold - HYSTERESIS, MIN_RELEASE_THRESHOLD)

    @property
    def silence_needed_ms(self) -> int:
        """Silence that would end the current turn, given the transcript so far."""
        cfg = self._config
        if isinstance(cfg, ServerVad):
            return cfg.silence_duration_ms
        if self._completeness is None:
            self._completeness = self._end_of_turn.completeness(self._transcript)
        return semantic_silence_ms(cfg.eagerness, self._completeness)

    # ------------------------------------------------------------------ inputs

    def configure(self, config: ServerVad | SemanticVad) -> None:
        """New parameters; they apply from the next frame. Current speech is kept."""
        self._config = config

    def update_transcript(self, text: str) -> None:
        """The partial transcript of the current speech so far (used by ``semantic_vad``).

        The transcript is forgotten when speech starts or stops and on ``reset()``, so a late
        partial of the previous turn cannot leak into the next one: send it after
        ``SpeechStarted``."""
        if text != self._transcript:
            self._transcript = text
            self._completeness = None

    def reset(self) -> None:
        """Forget the current speech and any speech run (the buffer was cleared or committed)."""
        self._run_start = None
        self._speech_start_ms = None
        self._speech_end = 0.0
        self.update_transcript("")

    def push(
        self, probability: float, frame_end_ms: float, *, assistant_speaking: bool = False
    ) -> list[TurnEvent]:
        """One VAD frame of ``frame_ms`` ending at ``frame_end_ms`` (input-audio ms)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {probability!r}")
        if not math.isfinite(frame_end_ms):
            raise ValueError("frame_end_ms must be finite")
        last = self._last_frame_end
        if last is not None and frame_end_ms < last - _EPS:
            raise ValueError(f"frames must come in time order: {frame_end_ms} after {last}")
        self._last_frame_end = frame_end_ms
        frame_start = frame_end_ms - self._frame_ms
        if self.in_speech:
            return self._push_in_speech(probability, frame_end_ms)
        return self._push_idle(probability, frame_start, frame_end_ms, last, assistant_speaking)

    # ------------------------------------------------------------------ internals

    def _push_idle(
        self, probability: float, frame_start: float, frame_end: float, last: float | None, guarded: bool
    ) -> list[TurnEvent]:
        threshold = self.threshold
        min_ms: float = self._min_speech_ms
        if guarded:
            threshold = min(1.0, threshold + self._guard.threshold_boost)
            min_ms = max(min_ms, self._guard.min_speech_ms)
        if probability < threshold:
            self._run_start = None
            return []
        gap = last is not None and frame_start > last + self._frame_ms / 2
        if self._run_start is None or gap:
            self._run_start = max(frame_start, 0.0)
        if frame_end - self._run_start < min_ms - _EPS:
            return []
        onset = self._run_start
        self._run_start = None
        self._speech_start_ms = max(0, round(onset - self.prefix_padding_ms))
        self._speech_end = frame_end
        self.update_transcript("")
        return [SpeechStarted(audio_start_ms=self._speech_start_ms)]

    def _push_in_speech(self, probability: float, frame_end: float) -> list[TurnEvent]:
        if probability >= self.release_threshold:
            self._speech_end = frame_end
            return []
        if frame_end - self._speech_end < self.silence_needed_ms - _EPS:
            return []
        end = round(self._speech_end)
        self.reset()
        return [SpeechStopped(audio_end_ms=end)]
