"""LineMedia: session audio to the line (converted when formats differ), line audio to the session,
and the output_audio_buffer events that follow the player's progress."""

from __future__ import annotations

import base64

import numpy as np

from palaver.audio import g711
from palaver.calls.line_media import LineMedia, line_format
from palaver.protocol.responses import RealtimeResponse
from palaver.protocol.server_events import ResponseDoneEvent, ResponseOutputAudioDeltaEvent, ServerEvent


class Player:
    def __init__(self) -> None:
        self.played: list[tuple[bytes, str]] = []
        self.clears = 0

    def play(self, audio: bytes, tag: str) -> None:
        self.played.append((audio, tag))

    def clear(self) -> None:
        self.clears += 1


def make(session_in: str = "audio/pcmu", session_out: str = "audio/pcmu"):
    player = Player()
    events: list[ServerEvent] = []
    formats = {"in": session_in, "out": session_out}
    media = LineMedia(
        "audio/pcmu",
        player,
        events.append,
        session_input_format=lambda: formats["in"],
        session_output_format=lambda: formats["out"],
    )
    return media, player, events, formats


def delta(audio: bytes, response_id: str = "resp_1") -> ResponseOutputAudioDeltaEvent:
    return ResponseOutputAudioDeltaEvent(
        response_id=response_id,
        item_id="item_1",
        output_index=0,
        content_index=0,
        delta=base64.b64encode(audio).decode(),
    )


def test_line_format_names_the_codec() -> None:
    assert line_format("PCMU") == "audio/pcmu" and line_format("pcma") == "audio/pcma"


def test_matching_formats_pass_audio_through_and_keep_it_off_the_observers() -> None:
    media, player, events, _ = make()
    ulaw = bytes(range(160))
    media.emit(delta(ulaw))
    assert player.played == [(ulaw, "resp_1")]
    assert events == []  # the audio is on the line, not on the sideband
    assert media.from_line(ulaw) == ulaw


def test_other_events_reach_the_observers() -> None:
    media, _, events, _ = make()
    done = ResponseDoneEvent(
        response=RealtimeResponse(id="resp_1", status="completed", output=[], output_modalities=["audio"])
    )
    media.emit(done)
    assert events == [done]


def test_pcm_session_audio_is_encoded_for_the_line() -> None:
    media, player, _, _ = make(session_out="audio/pcm")
    tone = (np.sin(np.arange(2400) * 2 * np.pi * 440 / 24000) * 8000).astype("<i2").tobytes()  # 100 ms
    media.emit(delta(tone))
    media.emit(delta(tone))
    line = b"".join(audio for audio, _ in player.played)
    assert 1200 <= len(line) <= 1600  # 200 ms at 8 kHz, one byte a sample (resampler latency aside)
    decoded = g711.ulaw_decode(line).astype(np.float64)
    assert np.sqrt(np.mean(decoded[400:] ** 2)) > 3000  # the tone, not silence


def test_line_audio_is_decoded_for_a_pcm_session() -> None:
    media, _, _, _ = make(session_in="audio/pcm")
    ulaw = g711.ulaw_encode((np.ones(800) * 4000).astype(np.int16)).tobytes()  # 100 ms
    pcm = media.from_line(ulaw)
    assert len(pcm) % 2 == 0 and len(pcm) >= 2 * 2000  # ~2400 samples at 24 kHz


def test_started_stopped_and_cleared_follow_the_player() -> None:
    media, player, events, _ = make()
    media.emit(delta(b"\xff" * 160, "resp_a"))
    media.started("resp_a")
    media.stopped("resp_a")
    media.emit(delta(b"\xff" * 160, "resp_b"))
    media.started("resp_b")
    media.clear()
    media.clear()  # nothing left: no second cleared event
    assert [(e.type, getattr(e, "response_id", None)) for e in events] == [
        ("output_audio_buffer.started", "resp_a"),
        ("output_audio_buffer.stopped", "resp_a"),
        ("output_audio_buffer.started", "resp_b"),
        ("output_audio_buffer.cleared", "resp_b"),
    ]
    assert player.clears == 2
