"""Bad input gets a clear ``error`` event and the session lives on: after each, a normal turn completes."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.e2e.realtime_client import collect_until, connect, of_type, recv, send_audio
from tests.e2e.realtime_client import expect_error as _expect_error
from tests.e2e.realtime_client import text_turn as _text_turn

pytestmark = pytest.mark.e2e

TEXT_SESSION: dict[str, Any] = {"output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}


async def test_text_turn_event_order(palaver_server, llm) -> None:
    async with connect(palaver_server, **TEXT_SESSION) as conn:
        events = await _text_turn(conn, llm, "what is two plus two", "Four.")
    types = [e.type for e in events]
    assert types == [
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    assert llm.requests[-1]["messages"][-1] == {"role": "user", "content": "what is two plus two"}


@pytest.mark.parametrize(
    ("frame", "code", "param"),
    [
        ("this is not json", "invalid_json", None),
        ('["an", "array"]', "invalid_request_error", None),
        ('{"event_id": "evt_1"}', "missing_required_parameter", "type"),
        ('{"type": "no.such.event", "event_id": "evt_1"}', "invalid_value", "type"),
        (
            '{"type": "transcription_session.update", "event_id": "evt_1", "session": {}}',
            "invalid_value",
            "type",
        ),
        (
            '{"type": "conversation.item.delete", "event_id": "evt_1"}',
            "missing_required_parameter",
            "item_id",
        ),
        ('{"type": "response.cancel", "event_id": "evt_1", "bogus": 1}', "unknown_parameter", "bogus"),
        (
            '{"type": "conversation.item.truncate", "event_id": "evt_1", "item_id": "x", '
            '"content_index": 0, "audio_end_ms": "soon"}',
            "invalid_type",
            "audio_end_ms",
        ),
        (
            '{"type": "input_audio_buffer.append", "event_id": "evt_1", "audio": "%%%"}',
            "invalid_value",
            "audio",
        ),
        (
            '{"type": "session.update", "event_id": "evt_1", '
            '"session": {"type": "realtime", "voice": "ash"}}',
            "unknown_parameter",
            "session.voice",
        ),
        (
            '{"type": "session.update", "event_id": "evt_1", "session": {"instructions": "x"}}',
            "missing_required_parameter",
            "session.type",
        ),
        (
            '{"type": "session.update", "event_id": "evt_1", "session": {"type": "realtime", '
            '"audio": {"input": {"format": {"type": "pcm16"}}}}}',
            "invalid_value",
            "session.audio.input.format.type",
        ),
        (
            '{"type": "conversation.item.create", "event_id": "evt_1", "item": {"type": "message", '
            '"role": "system", "content": [{"type": "input_audio", "audio": ""}]}}',
            "invalid_value",
            None,
        ),
    ],
)
async def test_malformed_frames(palaver_server, llm, frame: str, code: str, param: str | None) -> None:
    async with connect(palaver_server, **TEXT_SESSION) as conn:
        await conn.send_raw(frame)
        error = await _expect_error(conn)
        if code == "invalid_request_error":
            assert error.type == "invalid_request_error"
        else:
            assert error.code == code, error
        if param is not None:
            assert error.param == param, error
        assert error.message
        if '"event_id": "evt_1"' in frame:
            assert error.event_id == "evt_1"
        await _text_turn(conn, llm)


async def test_commit_of_too_little_audio(palaver_server, llm) -> None:
    async with connect(palaver_server, **TEXT_SESSION) as conn:
        await conn.input_audio_buffer.commit(event_id="commit_1")
        error = await _expect_error(conn)
        assert error.code == "input_audio_buffer_commit_empty" and error.event_id == "commit_1"
        assert "0.00ms" in error.message
        await send_audio(conn, b"\0\0" * 24 * 50, chunk_bytes=4800)  # 50 ms
        await conn.input_audio_buffer.commit(event_id="commit_2")
        error = await _expect_error(conn)
        assert error.code == "input_audio_buffer_commit_empty" and "50.00ms" in error.message
        await conn.input_audio_buffer.clear()
        assert (await recv(conn)).type == "input_audio_buffer.cleared"
        await _text_turn(conn, llm)


async def test_second_response_while_one_is_active(palaver_server, llm) -> None:
    async with connect(palaver_server, **TEXT_SESSION) as conn:
        llm.push_hang()
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        )
        await conn.response.create(event_id="first")
        events = await collect_until(conn, "response.created")
        active = events[-1].response.id
        await conn.response.create(event_id="second")
        error = await _expect_error(conn)
        assert error.code == "conversation_already_has_active_response"
        assert error.event_id == "second" and active in error.message
        # Out-of-band responses may run beside it.
        llm.push_text("Side answer.")
        await conn.response.create(response={"conversation": "none", "metadata": {"topic": "side"}})
        side = await collect_until(conn, "response.done")
        side_done = of_type(side, "response.done")[0].response
        assert side_done.conversation_id is None and side_done.metadata == {"topic": "side"}
        assert side_done.status == "completed"
        assert not of_type(side, "conversation.item.added")
        await conn.response.cancel()
        done = await collect_until(conn, "response.done")
        cancelled = done[-1].response
        assert cancelled.id == active and cancelled.status == "cancelled"
        assert cancelled.status_details.reason == "client_cancelled"
        await conn.response.cancel(event_id="again")
        error = await _expect_error(conn)
        assert error.code == "response_cancel_not_active" and error.event_id == "again"
        await _text_turn(conn, llm)


async def test_item_errors(palaver_server, llm) -> None:
    async with connect(palaver_server, **TEXT_SESSION) as conn:
        await conn.conversation.item.retrieve(item_id="item_missing", event_id="r1")
        error = await _expect_error(conn)
        assert error.param == "item_id" and error.event_id == "r1"
        await conn.conversation.item.delete(item_id="item_missing")
        assert (await _expect_error(conn)).param == "item_id"
        await conn.conversation.item.create(
            previous_item_id="item_missing",
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
        )
        assert (await _expect_error(conn)).param == "previous_item_id"
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_audio", "transcript": "x"}],
            },
        )
        assert (await _expect_error(conn)).param == "item.content[0].type"
        events = await _text_turn(conn, llm)
        assistant = of_type(events, "response.output_item.done")[0].item
        await conn.conversation.item.truncate(item_id=assistant.id, content_index=0, audio_end_ms=10)
        assert (await _expect_error(conn)).param in ("content_index", "audio_end_ms")
        await conn.conversation.item.delete(item_id=assistant.id)
        deleted = await recv(conn)
        assert deleted.type == "conversation.item.deleted" and deleted.item_id == assistant.id
        await _text_turn(conn, llm)


async def test_audio_item_retrieve_and_truncate(palaver_server, llm) -> None:
    session = {"audio": {"input": {"turn_detection": None}}}
    async with connect(palaver_server, **session) as conn:
        llm.push_text("One two three four five six seven eight nine ten.")
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "count"}]}
        )
        await conn.response.create()
        events = await collect_until(conn, "response.done")
        item_id = of_type(events, "response.output_item.done")[0].item.id
        audio = b"".join(base64.b64decode(e.delta) for e in of_type(events, "response.output_audio.delta"))
        duration_ms = len(audio) / 48
        await conn.conversation.item.truncate(
            item_id=item_id, content_index=0, audio_end_ms=int(duration_ms) + 500
        )
        error = await _expect_error(conn)
        assert error.param == "audio_end_ms" and "shorter than" in error.message
        half = int(duration_ms / 2)
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=half)
        truncated = await recv(conn)
        assert truncated.type == "conversation.item.truncated" and truncated.audio_end_ms == half
        await conn.conversation.item.retrieve(item_id=item_id)
        retrieved = await recv(conn)
        assert retrieved.type == "conversation.item.retrieved"
        part = retrieved.item.content[0]
        assert len(base64.b64decode(part.audio)) == half * 48
        # The model keeps the words the user heard, and none that were not heard: about half.
        words = ["One", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten."]
        heard = part.transcript.split()
        assert heard == words[: len(heard)] and 3 <= len(heard) <= 7, part.transcript
        # Voice is fixed once assistant audio exists.
        await conn.session.update(session={"type": "realtime", "audio": {"output": {"voice": "ash"}}})
        error = await _expect_error(conn)
        assert error.code == "cannot_update_voice"
        await conn.session.update(session={"type": "realtime", "model": "some-other-model"})
        assert (await _expect_error(conn)).param == "session.model"
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        assert (await recv(conn)).type == "session.updated"
        await _text_turn(conn, llm)


async def test_llm_failure_fails_the_response_not_the_session(palaver_server, llm) -> None:
    async with connect(palaver_server, **TEXT_SESSION) as conn:
        llm.push_error(status=500, message="model crashed")
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        )
        await conn.response.create()
        events = await collect_until(conn, "response.done")
        response = events[-1].response
        assert response.status == "failed"
        assert response.status_details.type == "failed" and response.status_details.error is not None
        await _text_turn(conn, llm)


async def test_max_output_tokens_makes_the_response_incomplete(palaver_server, llm) -> None:
    async with connect(palaver_server, **TEXT_SESSION) as conn:
        llm.push_text("one two three four five six seven eight")
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "count"}]}
        )
        await conn.response.create(response={"max_output_tokens": 3})
        events = await collect_until(conn, "response.done")
        assert llm.requests[-1]["max_tokens"] == 3
        response = events[-1].response
        assert response.status == "incomplete" and response.max_output_tokens == 3
        assert response.status_details.reason == "max_output_tokens"
        assert of_type(events, "response.output_text.done")[0].text == "one two three"
        assert response.output[0].status == "incomplete"
        await _text_turn(conn, llm)
