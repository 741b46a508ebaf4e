"""A spoken turn through the stock ``openai`` SDK: speech in, transcript, LLM, speech out."""

from __future__ import annotations

import numpy as np
import pytest

from palaver.audio.g711 import ulaw_decode, ulaw_encode
from tests.e2e.realtime_client import collect_until, connect, joined_audio, of_type, send_audio
from tests.support.speech import flite_speech, silence, to_rate, word_error_rate

pytestmark = pytest.mark.e2e

SPOKEN = "what is the weather in paris tomorrow"
ANSWER = "It will be sunny in Paris tomorrow. Take your sunglasses."


def _speech_24k() -> bytes:
    pcm16k = silence(200, 16000) + flite_speech(SPOKEN) + silence(300, 16000)
    return to_rate(pcm16k, 16000, 24000)


def _speech_ulaw() -> bytes:
    pcm16k = silence(200, 16000) + flite_speech(SPOKEN) + silence(300, 16000)
    pcm8k = np.frombuffer(to_rate(pcm16k, 16000, 8000), dtype="<i2")
    return ulaw_encode(pcm8k)


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


async def _voice_turn(palaver_server, llm, fmt: dict[str, object], wire: bytes, bytes_per_ms: int):
    llm.push_text(ANSWER)
    session = {
        "include": ["item.input_audio_transcription.logprobs"],
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": fmt,
                "transcription": {"model": "gpt-4o-mini-transcribe"},
                "turn_detection": None,
            },
            "output": {"format": fmt, "voice": "marin"},
        },
    }
    async with connect(palaver_server, **session) as conn:
        await send_audio(conn, wire, chunk_bytes=40 * bytes_per_ms)
        await conn.input_audio_buffer.commit()
        await conn.response.create()
        events = await collect_until(conn, "response.done")
        # Transcription is asynchronous to the response; wait for it if it has not come yet.
        if not of_type(events, "conversation.item.input_audio_transcription.completed"):
            events += await collect_until(conn, "conversation.item.input_audio_transcription.completed")
    return events


def _check_turn(events, llm) -> None:
    committed = of_type(events, "input_audio_buffer.committed")
    assert len(committed) == 1
    user_item_id = committed[0].item_id

    completed = of_type(events, "conversation.item.input_audio_transcription.completed")
    assert len(completed) == 1 and completed[0].item_id == user_item_id
    assert word_error_rate(SPOKEN, completed[0].transcript) <= 0.2, completed[0].transcript
    # include: item.input_audio_transcription.logprobs -> one token a word, spelling the transcript.
    logprobs = completed[0].logprobs
    assert logprobs and "".join(t.token for t in logprobs) == completed[0].transcript
    assert all(t.logprob <= 0 and bytes(t.bytes).decode() == t.token for t in logprobs)

    # The brain heard the transcript as the user's turn.
    last_user = [m for m in llm.requests[-1]["messages"] if m["role"] == "user"][-1]
    assert "paris" in str(last_user["content"]).lower()

    created = of_type(events, "response.created")
    done = of_type(events, "response.done")
    assert len(created) == 1 and len(done) == 1
    response = done[0].response
    assert response.status == "completed"
    assert response.usage is not None and response.usage.total_tokens and response.usage.total_tokens > 0
    assert response.usage.output_token_details.audio_tokens > 0

    transcript_done = of_type(events, "response.output_audio_transcript.done")
    assert len(transcript_done) == 1 and transcript_done[0].transcript == ANSWER
    deltas = "".join(e.delta for e in of_type(events, "response.output_audio_transcript.delta"))
    assert deltas == ANSWER
    item = response.output[0]
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    assert item.content[0].type == "output_audio" and item.content[0].transcript == ANSWER

    # Event order of a GA voice turn (reference §4.7a).
    order = [e.type for e in events if not e.type.startswith("conversation.item.input_audio_transcription")]
    head = [t for t in dict.fromkeys(order) if t != "response.output_audio_transcript.delta"]
    assert head[:7] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_audio.delta",
    ]
    assert order[-6:] == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    # The assistant item also enters the conversation, right after the user's.
    added = of_type(events, "conversation.item.added")
    assert [a.item.id for a in added] == [user_item_id, item.id]
    assert added[1].previous_item_id == user_item_id


async def test_voice_turn_pcm24k(palaver_server, llm) -> None:
    events = await _voice_turn(palaver_server, llm, {"type": "audio/pcm", "rate": 24000}, _speech_24k(), 48)
    _check_turn(events, llm)
    audio = np.frombuffer(joined_audio(events), dtype="<i2")
    seconds = len(audio) / 24000
    words = len(ANSWER.split())
    assert 0.2 * words < seconds < 1.0 * words, seconds
    assert _rms(audio) > 300  # speech, not silence
    # Small chunks, so barge-in can stop audio quickly: none longer than 100 ms.
    sizes = [len(e.delta) * 3 // 4 for e in of_type(events, "response.output_audio.delta")]
    assert max(sizes) <= 100 * 48


async def test_voice_turn_pcmu(palaver_server, llm) -> None:
    events = await _voice_turn(palaver_server, llm, {"type": "audio/pcmu"}, _speech_ulaw(), 8)
    _check_turn(events, llm)
    wire = joined_audio(events)
    seconds = len(wire) / 8000  # one byte a sample at 8 kHz
    words = len(ANSWER.split())
    assert 0.2 * words < seconds < 1.0 * words, seconds
    assert _rms(ulaw_decode(np.frombuffer(wire, dtype=np.uint8))) > 300


async def test_cancel_stops_audio_mid_answer(palaver_server, llm) -> None:
    """A slow brain streams a long answer; cancelling mid-audio ends it with no late audio."""
    llm.chunk_delay = 0.03
    llm.push_text(" ".join(["This is a long sentence that keeps going for a while."] * 8))
    async with connect(palaver_server, audio={"input": {"turn_detection": None}}) as conn:
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "talk"}]}
        )
        await conn.response.create()
        await collect_until(conn, "response.output_audio.delta")
        await conn.response.cancel()
        events = await collect_until(conn, "response.done")
        done = events[-1].response
        assert done.status == "cancelled" and done.status_details.reason == "client_cancelled"
        assert done.output[0].status == "incomplete"
        # Nothing of the cancelled response follows its response.done.
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "again"}]}
        )
        after = await collect_until(conn, "conversation.item.done")
        assert [e.type for e in after] == ["conversation.item.added", "conversation.item.done"]
    # The brain was cut off too: far fewer words were spoken than the script had.
    spoken = done.output[0].content[0].transcript or ""
    assert len(spoken.split()) < 40
