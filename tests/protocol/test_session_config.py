"""Session defaults (§2.6) and the ``session.update`` merge rules (§2.7)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agents import function_tool
from agents.realtime.openai_realtime import OpenAIRealtimeWebSocketModel
from openai.types.realtime import RealtimeSessionCreateRequest, RealtimeTranscriptionSessionCreateRequest
from openai.types.realtime import SessionUpdateEvent as OpenAISessionUpdate

from palaver.protocol import (
    DEFAULT_INSTRUCTIONS,
    FunctionTool,
    InputTranscription,
    McpTool,
    ProtocolError,
    RealtimeSessionConfig,
    SemanticVad,
    ServerVad,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    TranscriptionSessionConfig,
    VoiceId,
    apply_session_update,
    new_realtime_session,
    new_transcription_session,
    parse_client_event,
)
from tests.protocol.openai_check import validate_server_json

EXPIRES = 1767233035


def _session() -> RealtimeSessionConfig:
    return new_realtime_session("gpt-realtime", expires_at=EXPIRES)


def _update(current: Any, session: dict[str, Any], *, audio: bool = False) -> Any:
    return apply_session_update(current, session, event_id="evt_1", audio_output_started=audio)


def _reject(current: Any, session: dict[str, Any], *, audio: bool = False) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        _update(current, session, audio=audio)
    assert caught.value.event_id == "evt_1"
    return caught.value


# ------------------------------------------------------------------ defaults


def test_realtime_defaults_match_observed_server() -> None:
    session = _session()
    data = session.to_dict()
    assert data["id"].startswith("sess_")
    assert data["instructions"] == DEFAULT_INSTRUCTIONS
    del data["id"], data["instructions"]
    assert data == {
        "type": "realtime",
        "object": "realtime.session",
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": EXPIRES,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
        },
        "include": None,
    }


def test_realtime_session_validates_in_session_created() -> None:
    parsed = validate_server_json(SessionCreatedEvent(session=_session()).to_json())
    assert isinstance(parsed.session, RealtimeSessionCreateRequest)
    extra = parsed.session.model_extra or {}
    assert extra == {
        "object": "realtime.session",
        "id": extra.get("id"),
        "expires_at": EXPIRES,
    }


def test_transcription_defaults_validate_in_session_created() -> None:
    session = new_transcription_session(expires_at=EXPIRES)
    data = session.to_dict()
    assert data["type"] == "transcription"
    assert data["object"] == "realtime.transcription_session"
    assert set(data) == {"type", "object", "id", "expires_at", "audio", "include"}
    assert set(data["audio"]) == {"input"}
    assert data["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"
    parsed = validate_server_json(SessionCreatedEvent(session=session).to_json())
    assert isinstance(parsed.session, RealtimeTranscriptionSessionCreateRequest)


def test_fully_configured_session_validates() -> None:
    session = _update(
        _session(),
        {
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": "Be brief.",
            "output_modalities": ["text"],
            "tools": [
                {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}},
                {
                    "type": "mcp",
                    "server_label": "docs",
                    "server_url": "https://mcp.example",
                    "allowed_tools": {"tool_names": ["search"], "read_only": True},
                    "require_approval": {"never": {"tool_names": ["search"]}},
                    "headers": {"X-Key": "1"},
                    "defer_loading": True,
                },
            ],
            "tool_choice": {"type": "mcp", "server_label": "docs", "name": "search"},
            "max_output_tokens": 1024,
            "tracing": {"workflow_name": "w", "group_id": "g", "metadata": {"a": 1}},
            "truncation": {
                "type": "retention_ratio",
                "retention_ratio": 0.8,
                "token_limits": {"post_instructions": 5000},
            },
            "prompt": {"id": "pmpt_1", "version": "3", "variables": {"name": "Ada"}},
            "include": ["item.input_audio_transcription.logprobs"],
            "parallel_tool_calls": False,
            "reasoning": {"effort": "minimal"},
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "noise_reduction": {"type": "far_field", "strength": 0.5},
                    "transcription": {
                        "model": "gpt-realtime-whisper",
                        "language": "en",
                        "delay": "low",
                        "keywords": ["palaver"],
                        "languages": ["en", "nb"],
                    },
                    "turn_detection": {"type": "semantic_vad", "eagerness": "high", "create_response": False},
                },
                "output": {"format": {"type": "audio/pcma"}, "voice": "marin", "speed": 1.25},
            },
        },
    )
    assert isinstance(session.tools[1], McpTool) and session.tools[1].defer_loading is True
    assert session.reasoning is not None and session.reasoning.effort == "minimal"
    validate_server_json(SessionUpdatedEvent(session=session).to_json())


# ------------------------------------------------------------------ merge rules


def test_partial_update_changes_only_present_fields() -> None:
    current = _session()
    updated = _update(current, {"type": "realtime", "audio": {"output": {"speed": 1.2}}})
    assert updated.audio.output.speed == 1.2
    before, after = current.to_dict(), updated.to_dict()
    before["audio"]["output"]["speed"] = 1.2
    assert after == before
    assert current.audio.output.speed == 1.0, "the current config is not mutated"


def test_null_clears_nullable_fields() -> None:
    current = _update(
        _session(),
        {
            "type": "realtime",
            "tracing": "auto",
            "prompt": {"id": "pmpt_1"},
            "include": ["item.input_audio_transcription.logprobs"],
            "audio": {
                "input": {"transcription": {"model": "whisper-1"}, "noise_reduction": {"type": "near_field"}}
            },
        },
    )
    assert current.tracing == "auto" and current.prompt is not None
    cleared = _update(
        current,
        {
            "type": "realtime",
            "tracing": "auto",
            "prompt": None,
            "include": None,
            "audio": {"input": {"turn_detection": None, "transcription": None, "noise_reduction": None}},
        },
    )
    assert cleared.prompt is None and cleared.include is None
    audio_in = cleared.audio.input
    assert (audio_in.turn_detection, audio_in.transcription, audio_in.noise_reduction) == (None, None, None)
    tracing_off = _update(_update(_session(), {"type": "realtime", "tracing": None}), {"type": "realtime"})
    assert tracing_off.tracing is None


def test_empty_values_are_just_values() -> None:
    current = _update(_session(), {"type": "realtime", "tools": [{"type": "function", "name": "f"}]})
    assert current.tools == [FunctionTool(name="f")]
    cleared = _update(current, {"type": "realtime", "instructions": "", "tools": []})
    assert cleared.instructions == "" and cleared.tools == []


def test_turn_detection_type_change_replaces_same_type_merges() -> None:
    semantic = _update(
        _session(), {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}
    )
    assert semantic.audio.input.turn_detection == SemanticVad()
    tuned = _update(
        _session(), {"type": "realtime", "audio": {"input": {"turn_detection": {"silence_duration_ms": 800}}}}
    )
    assert tuned.audio.input.turn_detection == ServerVad(silence_duration_ms=800)
    back = _update(
        semantic, {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
    )
    assert back.audio.input.turn_detection == ServerVad()


def test_transcription_merges_field_by_field() -> None:
    first = _update(
        _session(), {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}
    )
    second = _update(first, {"type": "realtime", "audio": {"input": {"transcription": {"language": "nb"}}}})
    assert second.audio.input.transcription == InputTranscription(model="whisper-1", language="nb")


def test_model_may_be_repeated_but_not_changed() -> None:
    assert _update(_session(), {"type": "realtime", "model": "gpt-realtime"}).model == "gpt-realtime"
    error = _reject(_session(), {"type": "realtime", "model": "gpt-realtime-mini"})
    assert (error.code, error.param) == ("invalid_value", "session.model")
    assert "gpt-realtime-mini" in error.message


def test_voice_is_frozen_once_audio_was_produced() -> None:
    change = {"type": "realtime", "audio": {"output": {"voice": "cedar"}}}
    assert _update(_session(), change).audio.output.voice == "cedar"
    error = _reject(_session(), change, audio=True)
    assert error.code == "cannot_update_voice"
    assert error.param == "session.audio.output.voice"
    assert error.message == "Cannot update a conversation's voice if assistant audio is present."
    same = _update(
        _session(), {"type": "realtime", "audio": {"output": {"voice": "alloy", "speed": 1.1}}}, audio=True
    )
    assert same.audio.output.speed == 1.1


def test_custom_voice_object() -> None:
    custom = _update(_session(), {"type": "realtime", "audio": {"output": {"voice": {"id": "voice_1234"}}}})
    assert custom.audio.output.voice == VoiceId(id="voice_1234")
    assert custom.to_dict()["audio"]["output"]["voice"] == {"id": "voice_1234"}
    _update(custom, {"type": "realtime", "audio": {"output": {"voice": {"id": "voice_1234"}}}}, audio=True)
    assert _reject(
        custom, {"type": "realtime", "audio": {"output": {"voice": "alloy"}}}, audio=True
    ).code == ("cannot_update_voice")


def test_tracing_is_frozen_once_enabled() -> None:
    traced = _update(_session(), {"type": "realtime", "tracing": "auto"})
    assert _update(traced, {"type": "realtime", "tracing": "auto"}).tracing == "auto"
    error = _reject(traced, {"type": "realtime", "tracing": {"workflow_name": "other"}})
    assert (error.code, error.param) == ("invalid_value", "session.tracing")


SESSION_ERRORS: list[tuple[str, dict[str, Any], str, str, str]] = [
    (
        "type missing",
        {"instructions": "x"},
        "missing_required_parameter",
        "session.type",
        "Missing required parameter: 'session.type'.",
    ),
    (
        "type unknown",
        {"type": "translation"},
        "invalid_value",
        "session.type",
        "Invalid value: 'translation'. Supported values are: 'realtime' and 'transcription'.",
    ),
    (
        "type not string",
        {"type": 1},
        "invalid_type",
        "session.type",
        "Invalid type for 'session.type': expected string, got integer",
    ),
    (
        "transcription into realtime",
        {"type": "transcription"},
        "invalid_value",
        "session.type",
        "Passing a transcription session update event to a realtime session is not allowed.",
    ),
    (
        "beta field",
        {"type": "realtime", "input_audio_format": "pcm16"},
        "unknown_parameter",
        "session.input_audio_format",
        "Unknown parameter: 'session.input_audio_format'.",
    ),
    (
        "beta voice",
        {"type": "realtime", "voice": "ash"},
        "unknown_parameter",
        "session.voice",
        "Unknown parameter: 'session.voice'.",
    ),
    (
        "temperature",
        {"type": "realtime", "temperature": 0.8},
        "unknown_parameter",
        "session.temperature",
        "Unknown parameter: 'session.temperature'.",
    ),
    (
        "read-only id",
        {"type": "realtime", "id": "sess_x"},
        "unknown_parameter",
        "session.id",
        "Unknown parameter: 'session.id'.",
    ),
    (
        "nested unknown",
        {
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "semantic_vad", "threshold": 0.5}}},
        },
        "unknown_parameter",
        "session.audio.input.turn_detection.threshold",
        "Unknown parameter: 'session.audio.input.turn_detection.threshold'.",
    ),
    (
        "null bool",
        {
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "create_response": None}}},
        },
        "invalid_type",
        "session.audio.input.turn_detection.create_response",
        "Invalid type for 'session.audio.input.turn_detection.create_response': expected boolean, got null",
    ),
    (
        "beta format",
        {"type": "realtime", "audio": {"input": {"format": {"type": "pcm16"}}}},
        "invalid_value",
        "session.audio.input.format.type",
        "Invalid value: 'pcm16'. Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.",
    ),
    (
        "format as string",
        {"type": "realtime", "audio": {"output": {"format": "pcm16"}}},
        "invalid_type",
        "session.audio.output.format",
        "Invalid type for 'session.audio.output.format': expected object, got string",
    ),
    (
        "bad rate",
        {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
        "invalid_value",
        "session.audio.input.format.rate",
        "Invalid value: 16000. Supported values are: 24000.",
    ),
    (
        "speed too high",
        {"type": "realtime", "audio": {"output": {"speed": 2.0}}},
        "decimal_above_max_value",
        "session.audio.output.speed",
        "Invalid 'session.audio.output.speed': decimal above maximum value. "
        "Expected a value <= 1.5, but got 2.0 instead.",
    ),
    (
        "threshold too low",
        {"type": "realtime", "audio": {"input": {"turn_detection": {"threshold": -1}}}},
        "decimal_below_min_value",
        "session.audio.input.turn_detection.threshold",
        "Expected a value >= 0.0",
    ),
    (
        "tool without name",
        {"type": "realtime", "tools": [{"type": "function", "name": "a"}, {"type": "function"}]},
        "missing_required_parameter",
        "session.tools[1].name",
        "Missing required parameter: 'session.tools[1].name'.",
    ),
    (
        "unknown tool type",
        {"type": "realtime", "tools": [{"type": "web_search"}]},
        "invalid_value",
        "session.tools[0].type",
        "Invalid value: 'web_search'. Supported values are: 'function' and 'mcp'.",
    ),
    (
        "both modalities",
        {"type": "realtime", "output_modalities": ["text", "audio"]},
        "invalid_value",
        "session.output_modalities",
        "expected exactly one of 'audio' or 'text'",
    ),
    (
        "bad modality",
        {"type": "realtime", "output_modalities": ["video"]},
        "invalid_value",
        "session.output_modalities[0]",
        "Invalid value: 'video'. Supported values are: 'text' and 'audio'.",
    ),
    (
        "bad truncation",
        {"type": "realtime", "truncation": "sometimes"},
        "invalid_value",
        "session.truncation",
        "Invalid value: 'sometimes'. Supported values are: 'auto' and 'disabled'.",
    ),
    (
        "bad eagerness",
        {
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "max"}}},
        },
        "invalid_value",
        "session.audio.input.turn_detection.eagerness",
        "Invalid value: 'max'.",
    ),
    (
        "instructions null",
        {"type": "realtime", "instructions": None},
        "invalid_type",
        "session.instructions",
        "expected string, got null",
    ),
    (
        "max tokens string",
        {"type": "realtime", "max_output_tokens": "lots"},
        "invalid_value",
        "session.max_output_tokens",
        "Invalid value: 'lots'. Supported values are: 'inf'.",
    ),
]


@pytest.mark.parametrize(
    ("update", "code", "param", "message"),
    [e[1:] for e in SESSION_ERRORS],
    ids=[e[0] for e in SESSION_ERRORS],
)
def test_rejected_updates(update: dict[str, Any], code: str, param: str, message: str) -> None:
    current = _session()
    before = current.to_dict()
    error = _reject(current, update)
    assert (error.code, error.param) == (code, param)
    assert message in error.message
    assert current.to_dict() == before


def test_transcription_session_rules() -> None:
    current = new_transcription_session(expires_at=EXPIRES)
    updated = _update(
        current,
        {
            "type": "transcription",
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
                    "turn_detection": None,
                }
            },
            "include": ["item.input_audio_transcription.logprobs"],
        },
    )
    assert isinstance(updated, TranscriptionSessionConfig)
    assert updated.audio.input.transcription == InputTranscription(
        model="gpt-4o-mini-transcribe", language="en"
    )
    assert updated.audio.input.turn_detection is None
    validate_server_json(SessionUpdatedEvent(session=updated).to_json())
    for field, value in (
        ("tools", []),
        ("instructions", "x"),
        ("output_modalities", ["text"]),
        ("model", "gpt-realtime"),
    ):
        error = _reject(current, {"type": "transcription", field: value})
        assert (error.code, error.param) == ("unknown_parameter", f"session.{field}")
    assert (
        _reject(current, {"type": "transcription", "audio": {"output": {}}}).param == "session.audio.output"
    )
    error = _reject(current, {"type": "realtime"})
    assert (
        error.message == "Passing a realtime session update event to a transcription session is not allowed."
    )


def test_agents_sdk_updates_apply() -> None:
    @function_tool
    def get_weather(city: str) -> str:
        """Get the weather for a city."""
        return city

    model = OpenAIRealtimeWebSocketModel()
    model.model = "gpt-realtime"
    settings: Any = {"instructions": "Be brief.", "tools": [get_weather], "voice": "ash"}
    first = OpenAISessionUpdate(session=model._get_session_config(settings), type="session.update")
    tracing = OpenAISessionUpdate(
        session=RealtimeSessionCreateRequest(model="gpt-realtime", type="realtime", tracing="auto"),
        type="session.update",
    )
    session = _session()
    for sdk_event in (first, tracing):
        event = parse_client_event(sdk_event.model_dump_json(exclude_unset=True))
        assert event.type == "session.update"
        session = apply_session_update(
            session, event.session, event_id=event.event_id, audio_output_started=False
        )
    assert session.instructions == "Be brief."
    assert session.audio.output.voice == "ash"
    assert session.audio.input.turn_detection == SemanticVad(interrupt_response=True)
    assert session.audio.input.transcription == InputTranscription(model="gpt-4o-mini-transcribe")
    assert [tool.name for tool in session.tools if isinstance(tool, FunctionTool)] == ["get_weather"]
    assert session.tracing == "auto"
    validate_server_json(SessionUpdatedEvent(session=session).to_json())


def test_reference_agents_update_applies() -> None:
    update = json.loads(
        '{"type":"realtime","model":"gpt-realtime","output_modalities":["audio"],'
        '"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},'
        '"transcription":{"model":"gpt-4o-mini-transcribe"},'
        '"turn_detection":{"type":"semantic_vad","interrupt_response":true}},'
        '"output":{"voice":"ash","format":{"type":"audio/pcm","rate":24000}}},'
        '"tools":[{"type":"function","name":"lookup","description":"d","parameters":{"type":"object"}}],'
        '"instructions":"Hi"}'
    )
    session = _update(_session(), update)
    session = _update(session, {"model": "gpt-realtime", "type": "realtime", "tracing": "auto"})
    assert session.tracing == "auto" and session.audio.output.voice == "ash"


def test_factories_apply_overrides() -> None:
    session = new_realtime_session(
        "gpt-realtime-mini",
        expires_at=EXPIRES,
        overrides={"instructions": "Hello", "audio": {"output": {"voice": "verse"}}},
    )
    assert (session.model, session.instructions, session.audio.output.voice) == (
        "gpt-realtime-mini",
        "Hello",
        "verse",
    )
    same_model = new_realtime_session(
        "gpt-realtime", expires_at=EXPIRES, overrides={"type": "realtime", "model": "gpt-realtime"}
    )
    assert same_model.model == "gpt-realtime"
    transcription = new_transcription_session(
        expires_at=EXPIRES, overrides={"audio": {"input": {"turn_detection": None}}}
    )
    assert transcription.audio.input.turn_detection is None
    with pytest.raises(ProtocolError) as caught:
        new_realtime_session("gpt-realtime", expires_at=EXPIRES, overrides={"voice": "ash"}, prefix="")
    assert (caught.value.code, caught.value.param, caught.value.event_id) == (
        "unknown_parameter",
        "voice",
        None,
    )
