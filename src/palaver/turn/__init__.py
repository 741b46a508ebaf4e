"""Turn-taking cores: VAD turn detection, end-of-turn scoring, idle timeout, playout accounting.

Pure and sans-I/O: no asyncio, no clocks, no sockets. The detector runs on input-audio time
(ms of audio appended this session); the idle timer and playout tracker on wall time (ms),
all passed in by the caller.
"""

from __future__ import annotations

from .detector import (
    BargeInGuard,
    SpeechStarted,
    SpeechStopped,
    TurnDetector,
    TurnEvent,
    semantic_silence_ms,
)
from .end_of_turn import EndOfTurnModel, RuleBasedEndOfTurn
from .idle import IdleTimer
from .playout import PlayoutTracker

__all__ = [
    "BargeInGuard",
    "EndOfTurnModel",
    "IdleTimer",
    "PlayoutTracker",
    "RuleBasedEndOfTurn",
    "SpeechStarted",
    "SpeechStopped",
    "TurnDetector",
    "TurnEvent",
    "semantic_silence_ms",
]
