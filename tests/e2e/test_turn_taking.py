"""Server turn detection over real sockets with the stock SDK, audio sent at real-time pace."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.realtime_client import client_for, collect_until, connect, of_type
from tests.support.speech import word_error_rate
from tests.support.speech_script import build, stream

pytestmark = pytest.mark.e2e

VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 600}


async def test_turns_and_boundaries_in_noise(palaver_server, llm) -> None:
    script = build(
        [
            ("pause", 800),
            ("say", "what is the weather in paris tomorrow"),
            ("end", None),
            ("pause", 1200),
            ("say", "please book a table"),
            ("pause", 300),  # a mid-sentence pause, shorter than the silence duration
            ("say", "for two at seven"),
            ("end", None),
            ("pause", 1200),
            ("say", "turn off the lights in the living room"),
            ("end", None),
            ("pause", 1000),
        ]
    )
    session = {
        "audio": {
            "input": {
                "turn_detection": {**VAD, "create_response": False},
                "transcription": {"model": "whisper-1"},
            }
        }
    }
    async with connect(palaver_server, **session) as conn:
        sender = asyncio.create_task(stream(conn, script.pcm))
        events: list[Any] = []
        async with asyncio.timeout(30):
            while len(of_type(events, "conversation.item.input_audio_transcription.completed")) < 3:
                events.append(await conn.recv())
        await sender
    started = of_type(events, "input_audio_buffer.speech_started")
    stopped = of_type(events, "input_audio_buffer.speech_stopped")
    assert len(started) == len(stopped) == 3, [e.type for e in events]
    assert not of_type(events, "response.created")
    for (true_start, true_end), s, e in zip(script.turns, started, stopped, strict=True):
        # speech_started reports the onset minus the prefix padding.
        assert abs(s.audio_start_ms + VAD["prefix_padding_ms"] - true_start) <= 100, (
            s.audio_start_ms,
            true_start,
        )
        assert abs(e.audio_end_ms - true_end) <= 100, (e.audio_end_ms, true_end)
        assert s.item_id == e.item_id
    committed = of_type(events, "input_audio_buffer.committed")
    assert [c.item_id for c in committed] == [s.item_id for s in started]


async def test_speaking_over_the_answer_cancels_it(palaver_server, llm) -> None:
    llm.chunk_delay = 0.05  # a slow brain: the answer is still being made when the user speaks again
    llm.push_text(" ".join(["Here is a long answer that goes on and on."] * 6))
    llm.push_text("Okay.")
    first = build([("pause", 500), ("say", "tell me a long story"), ("pause", 900)])
    second = build([("say", "stop please that is enough"), ("pause", 900)], seed=8)
    session = {"audio": {"input": {"turn_detection": VAD}}}
    async with connect(palaver_server, **session) as conn:
        await stream(conn, first.pcm)
        events = await collect_until(conn, "response.output_audio.delta")
        speaking = of_type(events, "response.created")[0].response.id
        # Let a second of answer audio go out, then talk over it.
        await asyncio.sleep(1.0)
        sender = asyncio.create_task(stream(conn, second.pcm))
        later: list[Any] = []
        async with asyncio.timeout(30):
            while len(of_type(later, "response.done")) < 2:
                later.append(await conn.recv())
        await sender
    types = [e.type for e in later]
    started_at = types.index("input_audio_buffer.speech_started")
    done = [e for e in later if e.type == "response.done"]
    cancelled = next(d for d in done if d.response.id == speaking)
    assert cancelled.response.status == "cancelled"
    assert cancelled.response.status_details.reason == "turn_detected"
    late_audio = [
        i
        for i, e in enumerate(later)
        if e.type == "response.output_audio.delta" and e.response_id == speaking and i > started_at
    ]
    assert len(late_audio) <= 1, late_audio  # at most the chunk already on its way
    # The interrupted answer keeps the words that were heard, and the user's new turn is answered.
    answered = next(d for d in done if d.response.id != speaking)
    assert answered.response.status == "completed"


async def test_transcription_session_emits_only_transcription(palaver_server, llm) -> None:
    utterances = [
        "what is the weather in paris tomorrow",
        "turn off the lights in the living room",
        "set an alarm for six thirty in the morning",
    ]
    parts: list[tuple[str, Any]] = [("pause", 500)]
    for text in utterances:
        parts += [("say", text), ("end", None), ("pause", 1000)]
    script = build(parts, snr_db=30)
    client = client_for(palaver_server)
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        created = await conn.recv()
        assert created.type == "session.created" and created.session.type == "transcription"
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}, "turn_detection": VAD}},
            }
        )
        assert (await conn.recv()).type == "session.updated"
        sender = asyncio.create_task(stream(conn, script.pcm))
        events: list[Any] = []
        async with asyncio.timeout(30):
            while len(of_type(events, "conversation.item.input_audio_transcription.completed")) < 3:
                events.append(await conn.recv())
        await sender
        # A response cannot be made in a transcription session.
        await conn.response.create()
        error = await conn.recv()
        assert error.type == "error"
    assert not [e for e in events if e.type.startswith("response.")]
    allowed = (
        "input_audio_buffer.",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input",
    )
    assert all(e.type.startswith(allowed) for e in events), {e.type for e in events}
    completed = of_type(events, "conversation.item.input_audio_transcription.completed")
    for text, c in zip(utterances, completed, strict=True):
        assert word_error_rate(text, c.transcript) <= 0.25, c.transcript
        deltas = [d.delta for d in of_type(events, "conversation.item.input_audio_transcription.delta")]
        item_deltas = "".join(
            d.delta
            for d in of_type(events, "conversation.item.input_audio_transcription.delta")
            if d.item_id == c.item_id
        )
        assert deltas and item_deltas == c.transcript
    # Deltas stream while the user speaks: some arrive before their item is committed.
    first_commit = [e.type for e in events].index("input_audio_buffer.committed")
    assert "conversation.item.input_audio_transcription.delta" in [e.type for e in events[:first_commit]]
