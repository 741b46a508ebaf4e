"""Every bound of ``palaver.protocol.bounds``: just inside is accepted, just outside refused with
OpenAI's code and the exact ``param``; hostile JSON (deep, wide, NaN, lone surrogates) always becomes
a ``ProtocolError``, never another exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palaver.protocol import (
    FunctionTool,
    McpToolInfo,
    ProtocolError,
    RealtimeSessionConfig,
    SessionUpdatedEvent,
    apply_session_update,
    new_realtime_session,
    new_transcription_session,
    parse_client_event,
)
from palaver.protocol.bounds import (
    MAX_FRAME_DEPTH,
    MAX_JSON_FIELD_DEPTH,
    deeper_than,
    loads_client_json,
)
from tests.protocol.openai_check import validate_server_json


def _session() -> RealtimeSessionConfig:
    return new_realtime_session("gpt-realtime", expires_at=0)


def _update(session: dict[str, Any]) -> RealtimeSessionConfig:
    return apply_session_update(
        _session(), {"type": "realtime", **session}, event_id="ev", audio_output_started=False
    )


def _nested(depth: int, leaf: object = 1, *, array: bool = False) -> Any:
    """``depth`` levels of objects (or arrays) around ``leaf``."""
    value = leaf
    for _ in range(depth):
        value = [value] if array else {"a": value}
    return value


def _vad(**fields: Any) -> dict[str, Any]:
    return {"audio": {"input": {"turn_detection": {"type": "server_vad", **fields}}}}


def _tool(**fields: Any) -> dict[str, Any]:
    return {"tools": [{"type": "function", "name": "get_weather", **fields}]}


def _mcp(**fields: Any) -> dict[str, Any]:
    return {"tools": [{"type": "mcp", "server_label": "docs", "server_url": "https://mcp.example", **fields}]}


TD = "session.audio.input.turn_detection"

# (name, update just inside, update just outside, code, param)
BOUNDS: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
    ("idle_timeout min", _vad(idle_timeout_ms=5000), _vad(idle_timeout_ms=4999), "integer_below_min_value",
     f"{TD}.idle_timeout_ms"),
    ("idle_timeout zero", _vad(idle_timeout_ms=None), _vad(idle_timeout_ms=0), "integer_below_min_value",
     f"{TD}.idle_timeout_ms"),
    ("idle_timeout max", _vad(idle_timeout_ms=30000), _vad(idle_timeout_ms=30001), "integer_above_max_value",
     f"{TD}.idle_timeout_ms"),
    ("prefix_padding max", _vad(prefix_padding_ms=10_000), _vad(prefix_padding_ms=10_001),
     "integer_above_max_value", f"{TD}.prefix_padding_ms"),
    ("prefix_padding 1e12", _vad(prefix_padding_ms=0), _vad(prefix_padding_ms=10**12),
     "integer_above_max_value", f"{TD}.prefix_padding_ms"),
    ("prefix_padding negative", _vad(prefix_padding_ms=0), _vad(prefix_padding_ms=-1),
     "integer_below_min_value", f"{TD}.prefix_padding_ms"),
    ("silence max", _vad(silence_duration_ms=60_000), _vad(silence_duration_ms=60_001),
     "integer_above_max_value", f"{TD}.silence_duration_ms"),
    ("threshold max", _vad(threshold=1.0), _vad(threshold=1.01), "decimal_above_max_value",
     f"{TD}.threshold"),
    ("threshold min", _vad(threshold=0.0), _vad(threshold=-0.01), "decimal_below_min_value",
     f"{TD}.threshold"),
    ("speed max", {"audio": {"output": {"speed": 1.5}}}, {"audio": {"output": {"speed": 1.51}}},
     "decimal_above_max_value", "session.audio.output.speed"),
    ("speed min", {"audio": {"output": {"speed": 0.25}}}, {"audio": {"output": {"speed": 0.24}}},
     "decimal_below_min_value", "session.audio.output.speed"),
    ("voice", {"audio": {"output": {"voice": "v" * 64}}}, {"audio": {"output": {"voice": "v" * 65}}},
     "string_above_max_length", "session.audio.output.voice"),
    ("voice 100k", {"audio": {"output": {"voice": "marin"}}}, {"audio": {"output": {"voice": "v" * 100_000}}},
     "string_above_max_length", "session.audio.output.voice"),
    ("voice id", {"audio": {"output": {"voice": {"id": "v" * 64}}}},
     {"audio": {"output": {"voice": {"id": "v" * 65}}}}, "string_above_max_length",
     "session.audio.output.voice.id"),
    ("noise strength", {"audio": {"input": {"noise_reduction": {"type": "near_field", "strength": 1.0}}}},
     {"audio": {"input": {"noise_reduction": {"type": "near_field", "strength": 1.1}}}},
     "decimal_above_max_value", "session.audio.input.noise_reduction.strength"),
    ("transcription prompt", {"audio": {"input": {"transcription": {"prompt": "p" * 16_384}}}},
     {"audio": {"input": {"transcription": {"prompt": "p" * 16_385}}}}, "string_above_max_length",
     "session.audio.input.transcription.prompt"),
    ("transcription language", {"audio": {"input": {"transcription": {"language": "l" * 128}}}},
     {"audio": {"input": {"transcription": {"language": "l" * 129}}}}, "string_above_max_length",
     "session.audio.input.transcription.language"),
    ("keywords", {"audio": {"input": {"transcription": {"keywords": ["k"] * 1024}}}},
     {"audio": {"input": {"transcription": {"keywords": ["k"] * 1025}}}}, "array_above_max_length",
     "session.audio.input.transcription.keywords"),
    ("max_output_tokens max", {"max_output_tokens": 4096}, {"max_output_tokens": 4097},
     "integer_above_max_value", "session.max_output_tokens"),
    ("max_output_tokens min", {"max_output_tokens": 1}, {"max_output_tokens": 0},
     "integer_below_min_value", "session.max_output_tokens"),
    ("instructions", {"instructions": "i" * 128_000}, {"instructions": "i" * 128_001},
     "string_above_max_length", "session.instructions"),
    ("tools count", {"tools": [{"type": "function", "name": f"f{i}"} for i in range(128)]},
     {"tools": [{"type": "function", "name": f"f{i}"} for i in range(129)]}, "array_above_max_length",
     "session.tools"),
    ("tools 10,000", {"tools": []}, {"tools": [{"type": "function", "name": f"f{i}"} for i in range(10_000)]},
     "array_above_max_length", "session.tools"),
    ("tool name length", _tool(name="n" * 64), _tool(name="n" * 65), "string_above_max_length",
     "session.tools[0].name"),
    ("tool name pattern", _tool(name="get-weather_2"), _tool(name="get weather"), "invalid_value",
     "session.tools[0].name"),
    ("tool name empty", _tool(name="a"), _tool(name=""), "invalid_value", "session.tools[0].name"),
    ("tool description", _tool(description="d" * 16_384), _tool(description="d" * 16_385),
     "string_above_max_length", "session.tools[0].description"),
    ("tool parameters depth", _tool(parameters=_nested(MAX_JSON_FIELD_DEPTH)),
     _tool(parameters=_nested(MAX_JSON_FIELD_DEPTH + 1)), "invalid_value", "session.tools[0].parameters"),
    ("tool parameters arrays", _tool(parameters={"a": _nested(MAX_JSON_FIELD_DEPTH - 1, array=True)}),
     _tool(parameters={"a": _nested(MAX_JSON_FIELD_DEPTH, array=True)}), "invalid_value",
     "session.tools[0].parameters"),
    ("mcp headers", _mcp(headers={f"x-{i}": "v" for i in range(64)}),
     _mcp(headers={f"x-{i}": "v" for i in range(65)}), "object_above_max_properties",
     "session.tools[0].headers"),
    ("mcp header value", _mcp(headers={"x-a": "v" * 8192}), _mcp(headers={"x-a": "v" * 8193}),
     "string_above_max_length", "session.tools[0].headers.x-a"),
    ("mcp server_label", _mcp(server_label="l" * 128), _mcp(server_label="l" * 129),
     "string_above_max_length", "session.tools[0].server_label"),
    ("mcp server_url", _mcp(server_url="https://a.example/" + "p" * 8174),
     _mcp(server_url="https://a.example/" + "p" * 8175), "string_above_max_length",
     "session.tools[0].server_url"),
    ("mcp allowed_tools", _mcp(allowed_tools=["t"] * 1024), _mcp(allowed_tools=["t"] * 1025),
     "array_above_max_length", "session.tools[0].allowed_tools"),
    ("retention_ratio", {"truncation": {"type": "retention_ratio", "retention_ratio": 1.0}},
     {"truncation": {"type": "retention_ratio", "retention_ratio": 1.5}}, "decimal_above_max_value",
     "session.truncation.retention_ratio"),
    ("post_instructions", {"truncation": {"type": "retention_ratio", "retention_ratio": 0.5,
                                          "token_limits": {"post_instructions": 1_000_000}}},
     {"truncation": {"type": "retention_ratio", "retention_ratio": 0.5,
                     "token_limits": {"post_instructions": 1_000_001}}}, "integer_above_max_value",
     "session.truncation.token_limits.post_instructions"),
    ("tracing metadata", {"tracing": {"metadata": _nested(MAX_JSON_FIELD_DEPTH)}},
     {"tracing": {"metadata": _nested(MAX_JSON_FIELD_DEPTH + 1)}}, "invalid_value",
     "session.tracing.metadata"),
    ("prompt variables count", {"prompt": {"id": "pmpt_1", "variables": {f"v{i}": "x" for i in range(1024)}}},
     {"prompt": {"id": "pmpt_1", "variables": {f"v{i}": "x" for i in range(1025)}}},
     "object_above_max_properties", "session.prompt.variables"),
    ("include", {"include": ["item.input_audio_transcription.logprobs"] * 1024},
     {"include": ["item.input_audio_transcription.logprobs"] * 1025}, "array_above_max_length",
     "session.include"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("inside", "outside", "code", "param"), [b[1:] for b in BOUNDS], ids=[b[0] for b in BOUNDS]
)
def test_session_bound(inside: dict[str, Any], outside: dict[str, Any], code: str, param: str) -> None:
    accepted = _update(inside)
    # What is accepted goes out in session.updated as a valid OpenAI event.
    validate_server_json(SessionUpdatedEvent(session=accepted).to_json())
    with pytest.raises(ProtocolError) as caught:
        _update(outside)
    assert (caught.value.code, caught.value.param, caught.value.event_id) == (code, param, "ev")
    assert caught.value.message.startswith(("Invalid '", "Invalid value"))
    assert param in caught.value.message


def test_prompt_variable_depth() -> None:
    """Not in BOUNDS: no variable this deep is a valid OpenAI ``input_*`` object to check session.updated."""
    variables = {"city": "Paris", "text": _nested(MAX_JSON_FIELD_DEPTH)}
    assert _update({"prompt": {"id": "pmpt_1", "variables": variables}}).prompt is not None
    with pytest.raises(ProtocolError) as caught:
        _update({"prompt": {"id": "pmpt_1", "variables": {"city": _nested(MAX_JSON_FIELD_DEPTH + 1)}}})
    assert (caught.value.code, caught.value.param) == ("invalid_value", "session.prompt.variables.city")


def test_idle_timeout_zero_message() -> None:
    with pytest.raises(ProtocolError) as caught:
        _update(_vad(idle_timeout_ms=0))
    assert caught.value.message == (
        f"Invalid '{TD}.idle_timeout_ms': integer below minimum value. "
        "Expected a value >= 5000, but got 0 instead."
    )


def test_a_refused_update_applies_nothing() -> None:
    current = _session()
    before = current.model_dump()
    with pytest.raises(ProtocolError):
        apply_session_update(
            current,
            {"type": "realtime", "instructions": "new", **_vad(idle_timeout_ms=0)},
            event_id=None,
            audio_output_started=False,
        )
    assert current.model_dump() == before


def test_transcription_sessions_are_bounded_too() -> None:
    session = new_transcription_session(expires_at=0)
    update = {
        "type": "transcription",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "prefix_padding_ms": 10**9}}},
    }
    with pytest.raises(ProtocolError) as caught:
        apply_session_update(session, update, event_id=None, audio_output_started=False)
    assert (caught.value.code, caught.value.param) == ("integer_above_max_value", f"{TD}.prefix_padding_ms")


def test_new_session_overrides_are_bounded() -> None:
    """Client secrets and call accepts build sessions from overrides: the same bounds apply."""
    with pytest.raises(ProtocolError) as caught:
        new_realtime_session(
            "gpt-realtime", expires_at=0, overrides={"audio": {"output": {"voice": "v" * 65}}}
        )
    assert (caught.value.code, caught.value.param) == (
        "string_above_max_length",
        "session.audio.output.voice",
    )


# ------------------------------------------------------------------ response.create


def _response(response: dict[str, Any]) -> str:
    return json.dumps({"type": "response.create", "event_id": "r1", "response": response})


RESPONSE_BOUNDS: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
    ("instructions", {"instructions": "i" * 128_000}, {"instructions": "i" * 128_001},
     "string_above_max_length", "response.instructions"),
    ("tools", {"tools": [{"type": "function", "name": "f"}] * 128},
     {"tools": [{"type": "function", "name": "f"}] * 129}, "array_above_max_length", "response.tools"),
    ("tool parameters", {"tools": [{"type": "function", "name": "f", "parameters": _nested(32)}]},
     {"tools": [{"type": "function", "name": "f", "parameters": _nested(33)}]}, "invalid_value",
     "response.tools[0].parameters"),
    ("max_output_tokens", {"max_output_tokens": 4096}, {"max_output_tokens": 4097}, "integer_above_max_value",
     "response.max_output_tokens"),
    ("voice", {"audio": {"output": {"voice": "v" * 64}}}, {"audio": {"output": {"voice": "v" * 65}}},
     "string_above_max_length", "response.audio.output.voice"),
    ("input items", {"input": [{"type": "item_reference", "id": "item_1"}] * 1024},
     {"input": [{"type": "item_reference", "id": "item_1"}] * 1025}, "array_above_max_length",
     "response.input"),
    ("metadata", {"metadata": {f"k{i}": "v" for i in range(16)}},
     {"metadata": {f"k{i}": "v" for i in range(17)}}, "object_above_max_properties", "response.metadata"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("inside", "outside", "code", "param"),
    [b[1:] for b in RESPONSE_BOUNDS],
    ids=[b[0] for b in RESPONSE_BOUNDS],
)
def test_response_create_bound(
    inside: dict[str, Any], outside: dict[str, Any], code: str, param: str
) -> None:
    parse_client_event(_response(inside))
    with pytest.raises(ProtocolError) as caught:
        parse_client_event(_response(outside))
    assert (caught.value.code, caught.value.param, caught.value.event_id) == (code, param, "r1")


def test_mcp_list_tools_item_schema_depth() -> None:
    def item(depth: int) -> str:
        tool = {"name": "t", "input_schema": _nested(depth)}
        listing = {"type": "mcp_list_tools", "server_label": "s", "tools": [tool]}
        return json.dumps({"type": "conversation.item.create", "item": listing})

    parse_client_event(item(MAX_JSON_FIELD_DEPTH))
    with pytest.raises(ProtocolError) as caught:
        parse_client_event(item(MAX_JSON_FIELD_DEPTH + 1))
    assert (caught.value.code, caught.value.param) == ("invalid_value", "item.tools[0].input_schema")


def test_models_the_server_builds_are_not_client_bounded() -> None:
    """An MCP server's own tool list (long description, deep schema) is not client input."""
    deep = _nested(MAX_JSON_FIELD_DEPTH + 10)
    tool = FunctionTool(name="mcp__docs__search", description="d" * 50_000, parameters=deep)
    assert tool.parameters == deep
    assert McpToolInfo(name="search", input_schema=deep).input_schema == deep


# ------------------------------------------------------------------ frames


def _frame_error(frame: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_client_event(frame)
    return caught.value


@pytest.mark.parametrize("depth", [MAX_FRAME_DEPTH + 1, 999, 1000, 1001, 10_000, 100_000, 1_000_000])
@pytest.mark.parametrize("array", [True, False], ids=["arrays", "objects"])
def test_deep_frames_are_invalid_json(depth: int, array: bool) -> None:
    inner = "[" * depth + "]" * depth if array else '{"a":' * depth + "1" + "}" * depth
    for frame in (f'{{"type":"response.create","x":{inner}}}', inner, inner.encode()):
        error = _frame_error(frame)
        assert error.code == "invalid_json"
        assert error.message == (
            f"Invalid JSON in client event: objects and arrays nested deeper than {MAX_FRAME_DEPTH} levels."
        )


def test_frame_depth_limit_is_exact() -> None:
    # The frame's own object is level 1: 99 more levels inside it are accepted by the JSON stage.
    ok = json.dumps({"type": "input_audio_buffer.clear", "x": _nested(MAX_FRAME_DEPTH - 1)})
    assert _frame_error(ok).code == "unknown_parameter"
    deep = json.dumps({"type": "input_audio_buffer.clear", "x": _nested(MAX_FRAME_DEPTH)})
    assert _frame_error(deep).code == "invalid_json"


def test_wide_frames_are_parsed() -> None:
    wide = json.dumps({"type": "input_audio_buffer.clear", "event_id": "w", "x": [[0]] * 200_000})
    error = _frame_error(wide)
    assert (error.code, error.param, error.event_id) == ("unknown_parameter", "x", "w")


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ('{"type":"x","v":NaN}', "NaN is not a JSON value"),
        ('{"type":"x","v":-Infinity}', "-Infinity is not a JSON value"),
        ('{"type":"x","v":1e999}', "the number 1e999 is out of range"),
        ('{"type":"x","event_id":"\\ud800"}', "a string holds a lone surrogate (\\uD800-\\uDFFF)"),
        ('{"type":"x","\\udfff":1}', "a string holds a lone surrogate (\\uD800-\\uDFFF)"),
    ],
)
def test_values_that_could_not_be_echoed_are_invalid_json(frame: str, reason: str) -> None:
    error = _frame_error(frame)
    assert (error.code, error.message) == ("invalid_json", f"Invalid JSON in client event: {reason}.")
    # The error itself must serialise (the frame's event_id is not echoed: it was never read).
    assert json.loads(error.to_event().to_json())["error"]["code"] == "invalid_json"


def test_surrogate_pairs_and_binary_frames_still_work() -> None:
    event = parse_client_event('{"type":"input_audio_buffer.clear","event_id":"\\ud83d\\ude00"}')
    assert event.event_id == "\N{GRINNING FACE}"
    assert parse_client_event(b'{"type":"input_audio_buffer.clear"}').type == "input_audio_buffer.clear"
    assert _frame_error(b'{"type":"\xed\xa0\x80"}').code == "invalid_json"  # an encoded surrogate


def test_deeper_than_counts_containers_only() -> None:
    assert not deeper_than(1, 0)
    assert deeper_than({}, 0) and not deeper_than({}, 1)
    assert deeper_than({"a": [1]}, 1) and not deeper_than({"a": [1]}, 2)
    assert deeper_than([[], [[[]]]], 3) and not deeper_than([[], [[[]]]], 4)
    assert loads_client_json("[[1]]") == [[1]]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(
    value=_json,
    depth=st.integers(min_value=0, max_value=40) | st.integers(min_value=0, max_value=3000),
    array=st.booleans(),
    kind=st.sampled_from(["session.update", "response.create", "conversation.item.create", "x"]),
)
def test_any_json_becomes_an_event_or_a_protocol_error(
    value: Any, depth: int, array: bool, kind: str
) -> None:
    """Random JSON, wrapped in random depth, under a real event type: nothing but ProtocolError."""
    # Written as text: json.dumps itself cannot write 3,000 levels.
    opening, closing = ("[", "]") if array else ('{"a":', "}")
    body = opening * depth + json.dumps(value) + closing * depth
    for frame in (
        f'{{"type":"{kind}","session":{body},"response":{body},"item":{body}}}',
        f'{{"type":"session.update","session":{{"type":"realtime","tools":[{body}]}}}}',
        body,
    ):
        try:
            event = parse_client_event(frame)
        except ProtocolError as error:
            json.loads(error.to_event().to_json())  # the error event always serialises
            continue
        if event.type == "session.update":
            try:
                session = apply_session_update(
                    _session(), event.session, event_id=None, audio_output_started=False
                )
            except ProtocolError:
                continue
            validate_server_json(SessionUpdatedEvent(session=session).to_json())
