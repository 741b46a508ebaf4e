"""server_vad turn detection on scripted VAD probabilities (32 ms frames, virtual time)."""

from __future__ import annotations

import pytest

from palaver.protocol.audio_config import SemanticVad, ServerVad
from palaver.turn import SpeechStarted, SpeechStopped, TurnDetector

from .script import SILENCE, SPEECH, run

NO_PAD = ServerVad(prefix_padding_ms=0)


def detector(**config: object) -> TurnDetector:
    return TurnDetector(ServerVad.model_validate({"prefix_padding_ms": 0, **config}))


# --------------------------------------------------------------------------- threshold


@pytest.mark.parametrize(
    ("threshold", "below", "at"), [(0.5, 0.49, 0.5), (0.8, 0.79, 0.81), (0.2, 0.19, 0.2)]
)
def test_threshold_just_under_never_starts_just_over_does(threshold: float, below: float, at: float) -> None:
    assert run(detector(threshold=threshold), [(320, SILENCE), (1984, below)]) == []
    events = run(detector(threshold=threshold), [(320, SILENCE), (320, at)])
    assert events == [(384.0, SpeechStarted(audio_start_ms=320))]


def test_default_config_is_openai_server_defaults() -> None:
    det = TurnDetector(ServerVad())
    assert det.threshold == 0.5
    assert det.prefix_padding_ms == 300
    assert det.silence_needed_ms == 200
    assert det.frame_ms == 32.0


# --------------------------------------------------------------------------- prefix padding


@pytest.mark.parametrize(("padding", "expected"), [(0, 992), (300, 692), (992, 0), (2000, 0)])
def test_prefix_padding_is_subtracted_from_onset_and_clamped(padding: int, expected: int) -> None:
    det = detector(prefix_padding_ms=padding)
    events = run(det, [(992, SILENCE), (640, SPEECH)])
    # Announced on the second speech frame, dated back to the first one's start minus padding.
    assert events == [(992.0 + 64, SpeechStarted(audio_start_ms=expected))]
    assert det.in_speech
    assert det.speech_start_ms == expected


def test_start_time_is_rounded_to_whole_ms() -> None:
    det = TurnDetector(NO_PAD, frame_ms=20.5, min_speech_ms=41)
    events = run(det, [(41, SILENCE), (82, SPEECH)])
    assert events == [(82.0, SpeechStarted(audio_start_ms=41))]
    det = TurnDetector(ServerVad(prefix_padding_ms=10), frame_ms=20.25, min_speech_ms=40)
    events = run(det, [(20.25, SILENCE), (81, SPEECH)])
    assert events[0][1] == SpeechStarted(audio_start_ms=10)  # 20.25 - 10 -> 10


# --------------------------------------------------------------------------- silence duration


def test_pause_shorter_than_silence_duration_does_not_stop() -> None:
    det = detector(silence_duration_ms=200)
    events = run(det, [(320, SPEECH), (160, SILENCE), (320, SPEECH), (192, SILENCE)])
    assert events == [(64.0, SpeechStarted(0))]
    assert det.in_speech


def test_silence_of_silence_duration_stops_at_true_end_of_speech() -> None:
    det = detector(silence_duration_ms=200)
    events = run(det, [(320, SPEECH), (160, SILENCE), (320, SPEECH), (640, SILENCE)])
    assert events == [(64.0, SpeechStarted(0)), (1024.0, SpeechStopped(audio_end_ms=800))]
    assert not det.in_speech
    assert det.speech_start_ms is None


@pytest.mark.parametrize("silence", [0, 32, 100, 500, 1000, 3000])
def test_stop_fires_once_the_silence_has_lasted(silence: int) -> None:
    frames_needed = max(1, -(-silence // 32))  # ceil, at least the first silent frame
    det = detector(silence_duration_ms=silence)
    events = run(det, [(640, SPEECH), (32 * frames_needed + 640, SILENCE)])
    assert len(events) == 2
    stop_at, stop = events[1]
    assert stop == SpeechStopped(audio_end_ms=640)
    assert stop_at == 640 + 32 * frames_needed


@pytest.mark.parametrize("silence", [96, 200, 500])
def test_pause_one_frame_short_of_silence_duration_keeps_speech(silence: int) -> None:
    frames_short = -(-silence // 32) - 1
    det = detector(silence_duration_ms=silence)
    events = run(det, [(320, SPEECH), (32 * frames_short, SILENCE), (320, SPEECH)])
    assert [e for _, e in events] == [SpeechStarted(0)]


def test_two_turns_in_a_row() -> None:
    det = detector()
    events = run(det, [(320, SPEECH), (320, SILENCE), (640, SPEECH), (320, SILENCE)])
    assert [e for _, e in events] == [
        SpeechStarted(0),
        SpeechStopped(320),
        SpeechStarted(640),
        SpeechStopped(1280),
    ]


# --------------------------------------------------------------------------- min speech


def test_single_frame_click_is_ignored() -> None:
    det = detector()
    assert run(det, [(320, SILENCE), (32, 1.0), (320, SILENCE), (32, 1.0), (32, SILENCE), (32, 1.0)]) == []
    assert not det.in_speech


def test_two_frames_start_by_default() -> None:
    assert run(detector(), [(64, SPEECH)]) == [(64.0, SpeechStarted(0))]


@pytest.mark.parametrize(("min_speech", "frames_needed"), [(0, 1), (32, 1), (33, 2), (160, 5), (250, 8)])
def test_min_speech_ms(min_speech: int, frames_needed: int) -> None:
    det = TurnDetector(NO_PAD, min_speech_ms=min_speech)
    assert run(det, [(32 * (frames_needed - 1), SPEECH), (320, SILENCE)]) == []
    det = TurnDetector(NO_PAD, min_speech_ms=min_speech)
    assert run(det, [(320, SILENCE), (32 * frames_needed, SPEECH)]) == [
        (320.0 + 32 * frames_needed, SpeechStarted(320))
    ]


def test_a_gap_in_the_frames_breaks_the_run() -> None:
    det = detector()
    assert det.push(SPEECH, 32.0) == []
    assert det.push(SPEECH, 320.0) == []  # frames in between never arrived
    assert det.push(SPEECH, 352.0) == [SpeechStarted(288)]


# --------------------------------------------------------------------------- hysteresis


def test_soft_frames_between_release_and_threshold_continue_speech() -> None:
    det = detector(threshold=0.5, silence_duration_ms=200)
    assert det.release_threshold == pytest.approx(0.35)
    events = run(det, [(320, SPEECH), (960, 0.36), (320, SILENCE)])
    assert [e for _, e in events] == [SpeechStarted(0), SpeechStopped(audio_end_ms=1280)]


def test_frames_below_release_count_as_silence() -> None:
    det = detector(threshold=0.5, silence_duration_ms=200)
    events = run(det, [(320, SPEECH), (320, 0.34)])
    assert [e for _, e in events] == [SpeechStarted(0), SpeechStopped(audio_end_ms=320)]


def test_soft_frames_do_not_start_speech() -> None:
    assert run(detector(threshold=0.5), [(1984, 0.45)]) == []


def test_release_threshold_is_floored() -> None:
    det = detector(threshold=0.1, silence_duration_ms=100)
    assert det.release_threshold == pytest.approx(0.05)
    events = run(det, [(64, 0.1), (640, 0.05), (160, 0.049)])
    assert [e for _, e in events] == [SpeechStarted(0), SpeechStopped(audio_end_ms=704)]


# --------------------------------------------------------------------------- configure / reset


def test_configure_applies_from_the_next_frame() -> None:
    det = detector(silence_duration_ms=200)
    assert [e for _, e in run(det, [(320, SPEECH), (96, SILENCE)])] == [SpeechStarted(0)]
    det.configure(ServerVad(prefix_padding_ms=0, silence_duration_ms=1000))
    assert run(det, [(800, SILENCE)], start_ms=416) == []  # 896 ms of silence < 1000
    det.configure(ServerVad(prefix_padding_ms=0, silence_duration_ms=100))
    assert run(det, [(32, SILENCE)], start_ms=1216) == [(1248.0, SpeechStopped(audio_end_ms=320))]


def test_configure_threshold_and_padding_mid_stream() -> None:
    det = detector(threshold=0.5)
    assert run(det, [(320, 0.6), (320, SILENCE)])[0][1] == SpeechStarted(0)
    det.configure(ServerVad(threshold=0.7, prefix_padding_ms=100))
    assert run(det, [(320, 0.6)], start_ms=640) == []
    assert run(det, [(64, 0.7)], start_ms=960) == [(1024.0, SpeechStarted(860))]


def test_configure_switches_to_semantic_vad_and_keeps_the_current_speech() -> None:
    det = detector(silence_duration_ms=200)
    run(det, [(320, SPEECH)])
    det.configure(SemanticVad(eagerness="high"))
    det.update_transcript("see you tomorrow.")  # completeness 1.0: 250 ms
    assert det.silence_needed_ms == 250
    events = run(det, [(224, SILENCE), (32, SILENCE)], start_ms=320)
    assert events == [(576.0, SpeechStopped(audio_end_ms=320))]


def test_reset_forgets_current_speech() -> None:
    det = detector()
    run(det, [(320, SPEECH)])
    assert det.in_speech
    det.reset()
    assert not det.in_speech
    assert det.speech_start_ms is None
    assert run(det, [(640, SILENCE)], start_ms=320) == []  # no stop for forgotten speech
    assert run(det, [(64, SPEECH)], start_ms=960) == [(1024.0, SpeechStarted(960))]


def test_reset_forgets_a_run_in_progress() -> None:
    det = detector()
    assert det.push(SPEECH, 32.0) == []
    det.reset()
    assert det.push(SPEECH, 64.0) == []
    assert det.push(SPEECH, 96.0) == [SpeechStarted(32)]


# --------------------------------------------------------------------------- local errors


def test_frames_must_come_in_time_order() -> None:
    det = detector()
    det.push(SILENCE, 64.0)
    det.push(SILENCE, 64.0)  # a repeated time is tolerated
    with pytest.raises(ValueError, match="time order"):
        det.push(SILENCE, 32.0)


@pytest.mark.parametrize("probability", [-0.1, 1.5, float("nan")])
def test_probability_must_be_a_probability(probability: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        detector().push(probability, 32.0)


def test_constructor_rejects_bad_frames() -> None:
    with pytest.raises(ValueError, match="frame_ms"):
        TurnDetector(ServerVad(), frame_ms=0)
    with pytest.raises(ValueError, match="min_speech_ms"):
        TurnDetector(ServerVad(), min_speech_ms=-1)
