"""Turn detection inside the session, without sockets: a scripted VAD (loud frames are speech)
and scripted engine, so every event can be checked exactly."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np
import pytest

from palaver.engine.events import OutputAudio, OutputText
from palaver.protocol.audio_config import ServerVad
from palaver.protocol.client_events import parse_client_event
from palaver.session.session import Session
from palaver.turn.detector import BargeInGuard
from tests.session.test_session_invariants import DONE, Events, FakeSTT, ScriptedEngine, build, release, until


class LoudnessStream:
    def probability(self, frame: bytes) -> float:
        return 1.0 if np.abs(np.frombuffer(frame, dtype="<i2")).max() > 1000 else 0.0

    def reset(self) -> None:
        pass


class LoudnessVAD:
    name = "loudness"
    sample_rate = 16000
    frame_samples = 512

    def open_stream(self) -> LoudnessStream:
        return LoudnessStream()


def loud(ms: int) -> bytes:
    t = np.arange(24 * ms) / 24000
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes()


def quiet(ms: int) -> bytes:
    return b"\0\0" * 24 * ms


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


VAD = {"type": "server_vad", "silence_duration_ms": 300, "prefix_padding_ms": 200}


def make(turn_detection: dict[str, Any], **options: Any) -> tuple[Session, ScriptedEngine, Events]:
    session, engine, events, _ = build(FakeSTT(), vad=LoudnessVAD(), **options)
    update = {"type": "realtime", "audio": {"input": {"turn_detection": turn_detection}}}
    session.handle_event(parse_client_event(json.dumps({"type": "session.update", "session": update})))
    return session, engine, events


async def append(session: Session, pcm: bytes, chunk_ms: int = 40) -> None:
    step = 48 * chunk_ms
    for i in range(0, len(pcm), step):
        await session.handle_frame(
            json.dumps(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + step]).decode()}
            )
        )


def of(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


@pytest.fixture
async def closing():
    sessions: list[Session] = []
    yield sessions
    for s in sessions:
        await s.close()


async def test_speech_is_detected_committed_and_answered(closing) -> None:
    session, engine, events = make(VAD)
    closing.append(session)
    engine.script = [OutputText("Hi."), DONE]
    await append(session, quiet(520) + loud(640) + quiet(400))
    started, stopped = (
        of(events, "input_audio_buffer.speech_started"),
        of(events, "input_audio_buffer.speech_stopped"),
    )
    assert len(started) == len(stopped) == 1
    # Onset at 512 ms (the first loud VAD frame starts at 16 frames x 32 ms), minus 200 ms padding.
    assert abs(started[0]["audio_start_ms"] - (520 - 200)) <= 32
    assert abs(stopped[0]["audio_end_ms"] - 1160) <= 32
    committed = of(events, "input_audio_buffer.committed")
    assert committed[0]["item_id"] == started[0]["item_id"] == stopped[0]["item_id"]
    await until(events, "response.done")
    assert engine.requests[0].messages[-1] == {"role": "user", "content": "hello there"}
    # The committed audio runs from the padded onset (~312 ms), not the start of the stream, to
    # where the stop was detected (last speech frame ~1184 ms + 300 ms silence, one chunk late at most).
    item_audio = session.conversation.audio(committed[0]["item_id"])
    assert item_audio is not None
    assert 1484 - 312 - 32 <= len(item_audio.data) / 48 <= 1484 - 312 + 72


async def test_create_response_false_only_commits(closing) -> None:
    session, _, events = make({**VAD, "create_response": False})
    closing.append(session)
    await append(session, quiet(300) + loud(400) + quiet(400))
    assert len(of(events, "input_audio_buffer.committed")) == 1
    await asyncio.sleep(0.05)
    assert not of(events, "response.created")


async def test_a_pause_shorter_than_the_silence_duration_keeps_the_turn(closing) -> None:
    session, _, events = make({**VAD, "create_response": False})
    closing.append(session)
    await append(session, quiet(300) + loud(400) + quiet(200) + loud(400) + quiet(400))
    assert len(of(events, "input_audio_buffer.speech_started")) == 1
    assert len(of(events, "input_audio_buffer.committed")) == 1


@pytest.mark.parametrize("interrupt", [True, False])
async def test_speech_interrupts_the_answer_only_when_asked(closing, interrupt: bool) -> None:
    session, engine, events = make({**VAD, "interrupt_response": interrupt}, barge_in=BargeInGuard(0, 0))
    closing.append(session)
    engine.steps = asyncio.Semaphore(0)
    engine.script = [OutputText("A long answer. "), OutputAudio(loud(200)[:9600], 24000), DONE]
    await append(session, quiet(300) + loud(400) + quiet(400))
    await until(events, "response.created")
    release(engine, 1)
    await until(events, "response.output_audio_transcript.delta")
    await append(session, loud(400))
    done = of(events, "response.done")
    if interrupt:
        assert done and done[0]["response"]["status"] == "cancelled"
        assert done[0]["response"]["status_details"]["reason"] == "turn_detected"
    else:
        assert not done
        release(engine, 5)
        await until(events, "response.done")
        assert of(events, "response.done")[0]["response"]["status"] == "completed"


async def test_echo_guard_ignores_short_bursts_while_the_assistant_speaks(closing) -> None:
    clock = Clock()
    session, engine, events = make(
        {**VAD, "create_response": False}, clock=clock, barge_in=BargeInGuard(250, 0)
    )
    closing.append(session)
    engine.script = [OutputText("Talking. "), OutputAudio(b"\1\0" * 24000 * 3, 24000), DONE]
    await session.handle_frame(json.dumps({"type": "response.create"}))
    await until(events, "response.done")  # 3 s of audio sent at once; the clock says it is still playing
    await append(session, quiet(200) + loud(128) + quiet(400))  # a 128 ms echo burst
    assert not of(events, "input_audio_buffer.speech_started")
    clock.now += 0.5
    await append(session, loud(400) + quiet(400))  # real speech
    assert len(of(events, "input_audio_buffer.speech_started")) == 1


async def test_server_playout_truncates_at_the_heard_position(closing) -> None:
    clock = Clock()
    session, engine, events = make(
        {**VAD, "create_response": False}, clock=clock, server_playout=True, barge_in=BargeInGuard(0, 0)
    )
    closing.append(session)
    engine.script = [OutputText("One two three four. "), OutputAudio(b"\1\0" * 24000 * 2, 24000), DONE]
    await session.handle_frame(json.dumps({"type": "response.create"}))
    await until(events, "response.done")
    item_id = of(events, "response.output_item.done")[0]["item"]["id"]
    clock.now += 1.0  # one of the two seconds has been played
    await append(session, loud(200) + quiet(400))
    truncated = of(events, "conversation.item.truncated")
    assert len(truncated) == 1 and truncated[0]["item_id"] == item_id
    assert truncated[0]["audio_end_ms"] == 1000
    item = session.conversation.get(item_id)
    assert item.content[0].transcript == "One two"  # half the audio: half the words


async def test_idle_timeout_prompts_the_user(closing) -> None:
    session, engine, events = make({**VAD, "idle_timeout_ms": 5000})  # OpenAI's minimum
    detection = session.config.audio.input.turn_detection
    assert isinstance(detection, ServerVad) and detection.idle_timeout_ms == 5000
    detection.idle_timeout_ms = 100  # past session.update's range check, so the test waits 0.1 s, not 5
    closing.append(session)
    engine.script = [OutputText("Anyone there?"), DONE]
    await session.handle_frame(json.dumps({"type": "response.create"}))
    await until(events, "response.done")
    await append(session, quiet(200))
    await until(events, "input_audio_buffer.timeout_triggered")
    timeout = of(events, "input_audio_buffer.timeout_triggered")[0]
    committed = of(events, "input_audio_buffer.committed")[0]
    assert committed["item_id"] == timeout["item_id"]
    await until(events, "response.done", 2)
    assert len(of(events, "response.created")) == 2


async def test_output_audio_buffer_clear_cuts_server_playout(closing) -> None:
    clock = Clock()
    cleared: list[bool] = []
    session, engine, events = make(
        {**VAD, "create_response": False},
        clock=clock,
        server_playout=True,
        on_playout_clear=lambda: cleared.append(True),
    )
    closing.append(session)
    engine.script = [OutputText("One two three four. "), OutputAudio(b"\1\0" * 24000 * 2, 24000), DONE]
    await session.handle_frame(json.dumps({"type": "response.create"}))
    await until(events, "response.done")
    item_id = of(events, "response.output_item.done")[0]["item"]["id"]
    clock.now += 0.5
    await session.handle_frame(json.dumps({"type": "output_audio_buffer.clear"}))
    assert cleared == [True]
    truncated = of(events, "conversation.item.truncated")
    assert [(t["item_id"], t["audio_end_ms"]) for t in truncated] == [(item_id, 500)]
    assert not of(events, "error")


async def test_output_audio_buffer_clear_is_an_error_without_server_playout(closing) -> None:
    session, _, events = make({**VAD, "create_response": False})
    closing.append(session)
    await session.handle_frame(json.dumps({"type": "output_audio_buffer.clear", "event_id": "c1"}))
    errors = of(events, "error")
    assert len(errors) == 1 and errors[0]["error"]["event_id"] == "c1"


async def test_dtmf_becomes_an_event(closing) -> None:
    session, _, events = make({**VAD, "create_response": False})
    closing.append(session)
    session.dtmf("5")
    (dtmf,) = of(events, "input_audio_buffer.dtmf_event_received")
    assert dtmf["event"] == "5" and dtmf["received_at"] > 1_700_000_000
