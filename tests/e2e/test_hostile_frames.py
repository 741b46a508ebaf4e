"""Frames meant to hurt the server, against ``palaver serve`` with the stock SDK: each gets an ``error``
event and the same socket then completes a normal text turn (issue 9: they used to close it 1006, or
make the server spin)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.realtime_client import connect, expect_error, recv, text_turn

TEXT_SESSION: dict[str, Any] = {"output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}
TD = "session.audio.input.turn_detection"


def _deep(depth: int, *, array: bool) -> str:
    return "[" * depth + "]" * depth if array else '{"a":' * depth + "1" + "}" * depth


def _update(session: dict[str, Any]) -> str:
    return json.dumps(
        {"type": "session.update", "event_id": "evt_1", "session": {"type": "realtime", **session}}
    )


def _vad(**turn_detection: Any) -> str:
    return _update({"audio": {"input": {"turn_detection": {"type": "server_vad", **turn_detection}}}})


def _schema(levels: int) -> dict[str, Any]:
    """A JSON Schema of ``levels`` nested object properties (two JSON levels each)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


FRAMES: list[tuple[str, str, str, str | None]] = [
    ("arrays 10,000 deep", _deep(10_000, array=True), "invalid_json", None),
    ("objects 10,000 deep", _deep(10_000, array=False), "invalid_json", None),
    ("arrays 100,000 deep", _deep(100_000, array=True), "invalid_json", None),
    ("event 10,000 deep", '{"type":"response.create","response":' + _deep(10_000, array=False) + "}",
     "invalid_json", None),
    ("tools nested 1,000 deep",
     '{"type":"session.update","session":{"type":"realtime","tools":[{"type":"function","name":"f",'
     '"parameters":' + _deep(1_000, array=False) + "}]}}", "invalid_json", None),
    ("tool schema 20 properties deep", _update({"tools": [{"type": "function", "name": "f",
                                                           "parameters": _schema(20)}]}),
     "invalid_value", "session.tools[0].parameters"),
    ("idle_timeout_ms 0", _vad(idle_timeout_ms=0), "integer_below_min_value", f"{TD}.idle_timeout_ms"),
    ("prefix_padding_ms 1e12", _vad(prefix_padding_ms=10**12), "integer_above_max_value",
     f"{TD}.prefix_padding_ms"),
    ("10,000 tools", _update({"tools": [{"type": "function", "name": f"tool_{i}"} for i in range(10_000)]}),
     "array_above_max_length", "session.tools"),
    ("100,000-character voice", _update({"audio": {"output": {"voice": "v" * 100_000}}}),
     "string_above_max_length", "session.audio.output.voice"),
    ("NaN speed", '{"type":"session.update","session":{"type":"realtime","audio":{"output":{"speed":NaN}}}}',
     "invalid_json", None),
    ("lone surrogate", '{"type":"response.create","event_id":"\\ud800"}', "invalid_json", None),
]  # fmt: skip


@pytest.mark.parametrize(("frame", "code", "param"), [f[1:] for f in FRAMES], ids=[f[0] for f in FRAMES])
async def test_hostile_frame_gets_an_error_and_the_session_goes_on(
    palaver_server, llm, frame: str, code: str, param: str | None
) -> None:
    async with connect(palaver_server, **TEXT_SESSION) as conn:
        await conn.send_raw(frame)
        error = await expect_error(conn)
        assert (error.code, error.param) == (code, param), error
        if param is not None:
            assert error.event_id == "evt_1" and param in error.message
        await text_turn(conn, llm)


async def test_refused_idle_timeout_leaves_the_session_quiet(palaver_server, llm) -> None:
    """``idle_timeout_ms: 0`` once turned one "hi" into thousands of responses; now it is refused,
    nothing of that update applies, and after the answer the socket stays silent."""
    async with connect(palaver_server, **TEXT_SESSION) as conn:
        turn = {"type": "server_vad", "idle_timeout_ms": 0}
        await conn.send_raw(
            _update({"instructions": "Be terse.", "audio": {"input": {"turn_detection": turn}}})
        )
        error = await expect_error(conn)
        assert (error.code, error.param) == ("integer_below_min_value", f"{TD}.idle_timeout_ms")
        await text_turn(conn, llm, "hi", "Hello.")
        with pytest.raises(TimeoutError):
            extra = await recv(conn, timeout=1.5)
            pytest.fail(f"unexpected event after the answer: {extra.type}")
        # The refused update's instructions were not applied either.
        assert "Be terse." not in json.dumps(llm.requests[-1]["messages"])
        # The bounds' own edges are accepted.
        edge = {"type": "server_vad", "idle_timeout_ms": 5000, "prefix_padding_ms": 10_000}
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": edge}}})
        updated = await recv(conn)
        assert updated.type == "session.updated"
        assert updated.session.audio.input.turn_detection.idle_timeout_ms == 5000
