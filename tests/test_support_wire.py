"""The wire guard accepts what the SDK accepts and fails on what it should."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.wire import EVENT_CLASSES, WireLogTail, validate_server_events

PART_ADDED: dict[str, Any] = {
    "type": "response.content_part.added",
    "event_id": "event_A1",
    "response_id": "resp_1",
    "item_id": "item_1",
    "output_index": 0,
    "content_index": 0,
    "part": {"type": "audio", "transcript": ""},
}
ITEM_ADDED: dict[str, Any] = {
    "type": "conversation.item.added",
    "event_id": "event_A2",
    "previous_item_id": None,
    "item": {
        "id": "item_2",
        "object": "realtime.item",
        "type": "function_call",
        "status": "completed",
        "name": "get_weather",
        "call_id": "call_1",
        "arguments": '{"city": "Paris"}',
    },
}
RESPONSE_CREATED: dict[str, Any] = {
    "type": "response.created",
    "event_id": "event_A3",
    "response": {
        "id": "resp_1",
        "object": "realtime.response",
        "status": "in_progress",
        "status_details": None,
        "output": [],
        "conversation_id": "conv_1",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
        "usage": None,
        "metadata": None,
    },
}
ERROR: dict[str, Any] = {
    "type": "error",
    "event_id": "event_A4",
    "error": {
        "type": "invalid_request_error",
        "code": "conversation_already_has_active_response",
        "message": "Conversation already has an active response in progress: resp_1.",
        "param": None,
        "event_id": "evt_client_1",
    },
}
EXTRA_TYPES: list[dict[str, Any]] = [
    {"type": "input_audio_buffer.dtmf_event_received", "event": "5", "received_at": 1756310470},
    {"type": "output_audio_buffer.started", "event_id": "event_B1", "response_id": "resp_1"},
    {"type": "output_audio_buffer.cleared", "event_id": "event_B2", "response_id": "resp_1"},
    {"type": "conversation.item.retrieved", "event_id": "event_B3", "item": ITEM_ADDED["item"]},
]


def lines(*events: dict[str, Any]) -> list[str]:
    return [json.dumps(e) for e in events]


def with_(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**event, **changes}


def without(event: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != key}


def test_valid_events_pass() -> None:
    assert validate_server_events(lines(PART_ADDED, ITEM_ADDED, RESPONSE_CREATED, ERROR, *EXTRA_TYPES)) == []
    assert validate_server_events([]) == []


def test_every_union_member_is_known() -> None:
    for name in ["session.created", "response.done", "response.output_audio.delta", "error"]:
        assert name in EVENT_CLASSES
    for extra in EXTRA_TYPES:
        assert extra["type"] in EVENT_CLASSES


def test_missing_event_id_fails() -> None:
    (failure,) = validate_server_events(lines(without(PART_ADDED, "event_id")))
    assert "event_id" in failure and "Field required" in failure


def test_wrong_part_type_fails() -> None:
    bad = with_(PART_ADDED, part={"type": "output_audio", "transcript": ""})
    (failure,) = validate_server_events(lines(bad))
    assert "line 1 (response.content_part.added" in failure
    assert "part.type" in failure and "output_audio" in failure


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        (with_(PART_ADDED, output_index="0"), "output_index"),  # strict: no str -> int coercion
        (with_(PART_ADDED, content_index=None), "content_index"),
        (with_(RESPONSE_CREATED, response={**RESPONSE_CREATED["response"], "status": "working"}), "status"),
        (with_(ITEM_ADDED, item={**ITEM_ADDED["item"], "type": "tool_call"}), "item"),
        (with_(ERROR, error={"message": "no type"}), "error.type"),
        (with_(PART_ADDED, surprise=1), "surprise: field not in ResponseContentPartAddedEvent"),
        (with_(PART_ADDED, part={"type": "audio", "audio_ms": 5}), "part.audio_ms: field not in"),
    ],
)
def test_invalid_events_fail(event: dict[str, Any], needle: str) -> None:
    failures = validate_server_events(lines(event))
    assert failures, f"expected a failure for {event}"
    assert any(needle in f for f in failures), failures


def test_extra_fields_may_be_allowed() -> None:
    assert validate_server_events(lines(with_(PART_ADDED, surprise=1)), allow_extra=True) == []


def test_unknown_type_and_garbage_fail() -> None:
    failures = validate_server_events(
        [json.dumps({"type": "response.audio.delta", "event_id": "e"}), "not json", "[]", ""]
    )
    assert len(failures) == 4
    assert "unknown server event type 'response.audio.delta'" in failures[0]
    assert failures[1].startswith("line 2: not JSON")
    assert failures[2].startswith("line 3: not a JSON object")


def test_repeated_event_id_fails() -> None:
    failures = validate_server_events(lines(PART_ADDED, with_(ITEM_ADDED, event_id="event_A1")))
    assert failures == [
        "line 2 (conversation.item.added, event_id='event_A1'): event_id repeats line 1",
    ]


def test_tail_returns_only_new_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "wire.jsonl"
    missing = WireLogTail(log)
    assert missing.new_lines() == []
    log.write_text("old\n")
    tail = WireLogTail(log)
    assert tail.new_lines() == []
    with log.open("a") as f:
        f.write('{"a": 1}\n{"b":')
    assert tail.new_lines() == ['{"a": 1}']
    with log.open("a") as f:
        f.write(" 2}\n")
    assert tail.new_lines() == ['{"b": 2}']
    assert tail.new_lines() == []
    assert missing.new_lines() == ["old", '{"a": 1}', '{"b": 2}']
    assert WireLogTail(log, from_start=True).new_lines() == ["old", '{"a": 1}', '{"b": 2}']
