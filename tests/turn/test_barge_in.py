"""The echo guard: stricter speech start while the assistant's audio is audible."""

from __future__ import annotations

import pytest

from palaver.protocol.audio_config import ServerVad
from palaver.turn import BargeInGuard, SpeechStarted, TurnDetector

from .script import SILENCE, SPEECH, run

CONFIG = ServerVad(prefix_padding_ms=0)


def test_default_guard() -> None:
    assert BargeInGuard() == BargeInGuard(min_speech_ms=250, threshold_boost=0.1)


def test_short_burst_while_assistant_speaks_is_ignored() -> None:
    det = TurnDetector(CONFIG)
    script = [(224, SPEECH), (320, SILENCE), (128, SPEECH), (320, SILENCE)]
    assert run(det, script, assistant_speaking=True) == []
    assert not det.in_speech


def test_long_speech_while_assistant_speaks_starts() -> None:
    det = TurnDetector(CONFIG)
    events = run(det, [(320, SILENCE), (640, SPEECH)], assistant_speaking=True)
    # 8 frames (256 ms) reach 250 ms; the start is still dated at the onset minus padding.
    assert events == [(576.0, SpeechStarted(audio_start_ms=320))]


def test_speech_must_exceed_the_boosted_threshold() -> None:
    det = TurnDetector(CONFIG)
    assert run(det, [(1984, 0.59)], assistant_speaking=True) == []
    assert run(det, [(256, 0.6)], start_ms=1984, assistant_speaking=True) == [
        (2240.0, SpeechStarted(audio_start_ms=1984))
    ]


def test_guard_is_not_applied_when_the_assistant_is_silent() -> None:
    det = TurnDetector(CONFIG)
    assert run(det, [(64, 0.55)]) == [(64.0, SpeechStarted(0))]


def test_disabled_guard() -> None:
    det = TurnDetector(CONFIG, barge_in=BargeInGuard(min_speech_ms=0, threshold_boost=0))
    assert run(det, [(64, 0.5)], assistant_speaking=True) == [(64.0, SpeechStarted(0))]


def test_custom_guard() -> None:
    det = TurnDetector(CONFIG, barge_in=BargeInGuard(min_speech_ms=500, threshold_boost=0.3))
    assert run(det, [(480, 0.95), (32, SILENCE), (480, 0.79)], assistant_speaking=True) == []
    assert run(det, [(512, 0.8)], start_ms=992, assistant_speaking=True) == [(1504.0, SpeechStarted(992))]


def test_boosted_threshold_is_capped_at_one() -> None:
    det = TurnDetector(ServerVad(threshold=0.95, prefix_padding_ms=0))
    assert run(det, [(256, 1.0)], assistant_speaking=True) == [(256.0, SpeechStarted(0))]


def test_guard_lifts_when_the_assistant_stops_mid_run() -> None:
    det = TurnDetector(CONFIG)
    assert run(det, [(128, SPEECH)], assistant_speaking=True) == []
    # Playback ended: the run already spans 160 ms >= 64 ms, so the next frame starts speech.
    assert run(det, [(32, SPEECH)], start_ms=128) == [(160.0, SpeechStarted(0))]


def test_guard_only_affects_the_start_not_the_stop() -> None:
    det = TurnDetector(CONFIG)
    run(det, [(64, SPEECH)])
    assert det.in_speech
    events = run(det, [(320, 0.4)], start_ms=64, assistant_speaking=True)
    assert events == []  # 0.4 is above the release threshold: speech continues


@pytest.mark.parametrize(("min_speech_ms", "boost"), [(-1, 0.1), (250, -0.1)])
def test_guard_validates(min_speech_ms: int, boost: float) -> None:
    with pytest.raises(ValueError):
        BargeInGuard(min_speech_ms=min_speech_ms, threshold_boost=boost)
