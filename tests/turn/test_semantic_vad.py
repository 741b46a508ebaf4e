"""semantic_vad: the silence that ends a turn depends on eagerness and on the words so far."""

from __future__ import annotations

from typing import Literal

import pytest

from palaver.protocol.audio_config import SemanticVad
from palaver.turn import SpeechStarted, SpeechStopped, TurnDetector, semantic_silence_ms

from .script import SILENCE, SPEECH, run

Eagerness = Literal["low", "medium", "high", "auto"]

COMPLETE = "I'd like to book a table for two."  # completeness 1.0
UNFINISHED = "I'd like to book a table for two and"  # completeness 0.1
BASE = {"high": 250, "medium": 500, "auto": 500, "low": 1000}
CAP = {"high": 2000, "medium": 4000, "auto": 4000, "low": 8000}


def turn(eagerness: Eagerness, transcript: str | None, *, pause_ms: int = 10_016) -> tuple[int, float]:
    """Speak 320 ms, give the transcript, stay silent; return (audio_end_ms, silence waited)."""
    det = TurnDetector(SemanticVad(eagerness=eagerness))
    events = run(det, [(320, SPEECH)])
    assert [e for _, e in events] == [SpeechStarted(audio_start_ms=0)]
    if transcript is not None:
        det.update_transcript(transcript)
    events = run(det, [(pause_ms, SILENCE)], start_ms=320)
    assert len(events) == 1, "exactly one stop"
    at, stop = events[0]
    assert isinstance(stop, SpeechStopped)
    return stop.audio_end_ms, at - stop.audio_end_ms


@pytest.mark.parametrize("eagerness", ["low", "medium", "high", "auto"])
def test_complete_transcript_ends_after_the_base_silence(eagerness: Eagerness) -> None:
    end, waited = turn(eagerness, COMPLETE)
    assert end == 320
    assert BASE[eagerness] <= waited < BASE[eagerness] + 32


@pytest.mark.parametrize("eagerness", ["low", "medium", "high", "auto"])
def test_unfinished_transcript_waits_up_to_the_documented_maximum(eagerness: Eagerness) -> None:
    end, waited = turn(eagerness, UNFINISHED)
    assert end == 320
    assert CAP[eagerness] <= waited < CAP[eagerness] + 32


@pytest.mark.parametrize("eagerness", ["low", "medium", "high", "auto"])
def test_no_transcript_is_unknown_and_waits_twice_the_base(eagerness: Eagerness) -> None:
    _, waited = turn(eagerness, None)
    assert 2 * BASE[eagerness] <= waited < 2 * BASE[eagerness] + 32


def test_eagerness_orders_the_waits() -> None:
    for transcript in (COMPLETE, UNFINISHED, None):
        high, medium, low = (turn(e, transcript)[1] for e in ("high", "medium", "low"))
        assert high < medium < low
        assert turn("auto", transcript)[1] == medium


def test_unfinished_does_not_stop_before_the_cap() -> None:
    det = TurnDetector(SemanticVad(eagerness="medium"))
    run(det, [(320, SPEECH)])
    det.update_transcript("so I was thinking that maybe we could um")
    assert run(det, [(3968, SILENCE)], start_ms=320) == []  # 3968 ms < 4 s
    assert det.in_speech
    assert run(det, [(32, SILENCE)], start_ms=4288) == [(4320.0, SpeechStopped(audio_end_ms=320))]


def test_a_late_transcript_update_ends_a_long_pause_at_once() -> None:
    det = TurnDetector(SemanticVad(eagerness="medium"))
    run(det, [(320, SPEECH)])
    det.update_transcript("I want to go to")
    assert run(det, [(1600, SILENCE)], start_ms=320) == []
    det.update_transcript("I want to go to Paris.")  # recogniser caught up: complete
    assert run(det, [(32, SILENCE)], start_ms=1920) == [(1952.0, SpeechStopped(audio_end_ms=320))]


def test_transcript_is_forgotten_when_speech_starts_and_stops() -> None:
    det = TurnDetector(SemanticVad(eagerness="high"))
    det.update_transcript("left over from the last turn.")
    run(det, [(320, SPEECH)])
    assert det.transcript == ""
    det.update_transcript("hello there.")
    run(det, [(320, SILENCE)], start_ms=320)
    assert not det.in_speech
    assert det.transcript == ""


def test_semantic_uses_fixed_threshold_and_padding() -> None:
    det = TurnDetector(SemanticVad())
    assert det.threshold == 0.5
    assert det.prefix_padding_ms == 300
    assert run(det, [(1984, 0.49)]) == []
    assert run(det, [(64, 0.5)], start_ms=1984) == [(2048.0, SpeechStarted(audio_start_ms=1684))]


class FixedModel:
    """A stand-in for a learned end-of-turn model."""

    def __init__(self, answers: dict[str, float]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def completeness(self, transcript: str) -> float:
        self.calls.append(transcript)
        return self.answers.get(transcript, 0.5)


def test_a_pluggable_model_decides_and_is_asked_once_per_transcript() -> None:
    model = FixedModel({"a": 0.25, "b": 1.0})
    det = TurnDetector(SemanticVad(eagerness="medium"), end_of_turn=model)
    run(det, [(320, SPEECH)])
    det.update_transcript("a")
    assert run(det, [(1984, SILENCE)], start_ms=320) == []  # needs 500 / 0.25 = 2000 ms
    assert run(det, [(32, SILENCE)], start_ms=2304)[0][1] == SpeechStopped(320)
    assert model.calls == ["a"]  # cached across the 63 silent frames
    run(det, [(320, SPEECH)], start_ms=3000)
    det.update_transcript("b")
    det.update_transcript("b")
    assert det.silence_needed_ms == 500
    assert model.calls == ["a", "b"]


@pytest.mark.parametrize(
    ("eagerness", "completeness", "expected"),
    [
        ("high", 1.0, 250), ("high", 0.5, 500), ("high", 0.25, 1000), ("high", 0.1, 2000),
        ("high", 0.0, 2000),
        ("medium", 1.0, 500), ("medium", 0.9, 556), ("medium", 0.5, 1000), ("medium", 0.1, 4000),
        ("auto", 0.5, 1000), ("auto", 0.0, 4000),
        ("low", 1.0, 1000), ("low", 0.5, 2000), ("low", 0.2, 5000), ("low", 0.1, 8000), ("low", 0.0, 8000),
        ("medium", 1.7, 500), ("medium", -1.0, 4000),
    ],
)  # fmt: skip
def test_semantic_silence_rule(eagerness: Eagerness, completeness: float, expected: int) -> None:
    assert semantic_silence_ms(eagerness, completeness) == expected
