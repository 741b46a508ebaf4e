"""Speech/pause scripts for the turn detector, on virtual time.

A script is a list of ``(duration_ms, probability)`` segments; ``frames`` cuts it into VAD
frames, ``run`` pushes them through a detector and records which frame produced which event.
"""

from __future__ import annotations

from collections.abc import Sequence

from palaver.turn import TurnDetector, TurnEvent

#: Probabilities a script reads well with.
SPEECH = 0.9
SILENCE = 0.0

Segment = tuple[float, float]


def frames(
    segments: Sequence[Segment], *, frame_ms: float = 32.0, start_ms: float = 0.0
) -> list[tuple[float, float]]:
    """``(probability, frame_end_ms)`` for every frame of the script, starting at ``start_ms``."""
    out: list[tuple[float, float]] = []
    t = start_ms
    for duration, probability in segments:
        count = round(duration / frame_ms)
        assert abs(count * frame_ms - duration) < 1e-9, f"{duration} ms is not a whole number of frames"
        for _ in range(count):
            t += frame_ms
            out.append((probability, t))
    return out


def run(
    detector: TurnDetector,
    segments: Sequence[Segment],
    *,
    start_ms: float = 0.0,
    assistant_speaking: bool = False,
) -> list[tuple[float, TurnEvent]]:
    """Push the script; return ``(frame_end_ms, event)`` for every event, in order."""
    events: list[tuple[float, TurnEvent]] = []
    for probability, end in frames(segments, frame_ms=detector.frame_ms, start_ms=start_ms):
        for event in detector.push(probability, end, assistant_speaking=assistant_speaking):
            events.append((end, event))
    return events


def duration(segments: Sequence[Segment]) -> float:
    return sum(d for d, _ in segments)
