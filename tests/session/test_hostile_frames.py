"""Hostile frames against the session, without sockets: each gets one ``error`` event, nothing of it is
applied, and the session goes on (a text turn still completes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from palaver.engine.events import OutputText
from palaver.protocol.bounds import MAX_JSON_FIELD_DEPTH
from tests.session.test_session_invariants import DONE, Events, FakeSTT, ScriptedEngine, build, until


def _deep(depth: int, *, array: bool) -> str:
    return "[" * depth + "]" * depth if array else '{"a":' * depth + "1" + "}" * depth


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "object"}
    for _ in range(depth - 1):
        value = {"type": "object", "properties": {"x": value}}
    return value


IDLE_ZERO = {"type": "server_vad", "idle_timeout_ms": 0}

HOSTILE: list[tuple[str, str | bytes, str, str | None]] = [
    ("10,000 deep arrays", _deep(10_000, array=True), "invalid_json", None),
    ("100,000 deep objects", _deep(100_000, array=False), "invalid_json", None),
    ("deep inside an event", f'{{"type":"session.update","session":{_deep(5_000, array=False)}}}',
     "invalid_json", None),
    ("deep binary frame", _deep(10_000, array=True).encode(), "invalid_json", None),
    ("tools nested 1,000 deep",
     '{"type":"session.update","session":{"type":"realtime","tools":[{"type":"function","name":"f",'
     '"parameters":' + _deep(1_000, array=False) + "}]}}", "invalid_json", None),
    ("tool schema 39 deep",
     json.dumps({"type": "session.update", "event_id": "u1",
                 "session": {"type": "realtime", "tools": [{"type": "function", "name": "f",
                                                            "parameters": _nested(20)}]}}),
     "invalid_value", "session.tools[0].parameters"),
    ("idle_timeout_ms 0",
     json.dumps({"type": "session.update", "event_id": "u1",
                 "session": {"type": "realtime", "instructions": "x",
                             "audio": {"input": {"turn_detection": IDLE_ZERO}}}}),
     "integer_below_min_value", "session.audio.input.turn_detection.idle_timeout_ms"),
    ("10,000 tools",
     json.dumps({"type": "session.update", "event_id": "u1",
                 "session": {"type": "realtime", "tools": [{"type": "function", "name": f"t{i}"}
                                                           for i in range(10_000)]}}),
     "array_above_max_length", "session.tools"),
    ("100,000-character voice",
     json.dumps({"type": "session.update", "event_id": "u1",
                 "session": {"type": "realtime", "audio": {"output": {"voice": "v" * 100_000}}}}),
     "string_above_max_length", "session.audio.output.voice"),
    ("NaN", '{"type":"session.update","session":{"type":"realtime","audio":{"output":{"speed":NaN}}}}',
     "invalid_json", None),
    ("lone surrogate", '{"type":"response.create","event_id":"\\udc00"}', "invalid_json", None),
]  # fmt: skip


@pytest.fixture
async def started():
    session, engine, events, executor = build(FakeSTT())
    yield session, engine, events
    await session.close()
    executor.shutdown(wait=False)


@pytest.mark.parametrize(("frame", "code", "param"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
async def test_hostile_frame_is_an_error_and_the_session_goes_on(
    started: tuple[Any, ScriptedEngine, Events], frame: str | bytes, code: str, param: str | None
) -> None:
    session, engine, events = started
    before = session.config.model_dump()
    await session.handle_frame(frame)
    errors = [e for e in events if e["type"] == "error"]
    assert [(e["error"]["code"], e["error"]["param"]) for e in errors] == [(code, param)]
    if param is not None:
        assert errors[0]["error"]["event_id"] == "u1"
    assert not [e for e in events if e["type"] == "session.updated"]
    assert session.config.model_dump() == before  # nothing of the refused frame was applied
    # The same session still answers a text turn.
    engine.script = [OutputText("Still here."), DONE]
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    await session.handle_frame(json.dumps({"type": "conversation.item.create", "item": item}))
    await session.handle_frame(json.dumps({"type": "response.create"}))
    await until(events, "response.done")
    done = next(e for e in events if e["type"] == "response.done")
    assert done["response"]["status"] == "completed"
    assert len([e for e in events if e["type"] == "error"]) == 1


async def test_deepest_accepted_schema_is_sent_back_in_session_updated(
    started: tuple[Any, ScriptedEngine, Events],
) -> None:
    """The deepest tool schema accepted (32 levels) serialises in session.updated (the 250-deep crash)."""
    session, _, events = started
    schema: Any = {}
    for _ in range(MAX_JSON_FIELD_DEPTH - 1):
        schema = {"a": schema}
    tool = {"type": "function", "name": "f", "parameters": schema}
    await session.handle_frame(
        json.dumps({"type": "session.update", "session": {"type": "realtime", "tools": [tool]}})
    )
    updated = [e for e in events if e["type"] == "session.updated"]
    assert len(updated) == 1 and updated[0]["session"]["tools"][0]["parameters"] == schema
    assert not [e for e in events if e["type"] == "error"]
