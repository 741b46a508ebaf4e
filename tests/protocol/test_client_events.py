"""``parse_client_event``: what the stock SDKs send is accepted; bad frames give OpenAI-style errors."""

from __future__ import annotations

import base64
import json
import typing
from typing import Any

import pytest
from agents import function_tool
from agents.realtime.model_inputs import RealtimeModelSendAudio, RealtimeModelSendUserInput
from agents.realtime.openai_realtime import OpenAIRealtimeWebSocketModel, _ConversionHelper
from openai.types.realtime import (
    ConversationItemDeleteEventParam,
    ConversationItemRetrieveEventParam,
    InputAudioBufferClearEventParam,
    InputAudioBufferCommitEventParam,
    OutputAudioBufferClearEventParam,
    RealtimeClientEvent,
    ResponseCancelEventParam,
    ResponseCreateEventParam,
    SessionUpdateEventParam,
)
from openai.types.realtime import SessionUpdateEvent as OpenAISessionUpdate
from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest

from palaver.protocol import (
    CLIENT_EVENT_TYPES,
    ConversationItemCreateEvent,
    FunctionCallOutputItem,
    InputAudioBufferAppendEvent,
    ItemReference,
    MessageItem,
    ProtocolError,
    ResponseCreateEvent,
    SessionUpdateEvent,
    parse_client_event,
)
from palaver.protocol.client_events import MAX_APPEND_BYTES


def _frame(event: Any) -> str:
    return (
        event.model_dump_json(exclude_unset=True) if hasattr(event, "model_dump_json") else json.dumps(event)
    )


def _error(frame: str | bytes | dict[str, Any]) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_client_event(frame if isinstance(frame, str | bytes) else json.dumps(frame))
    return caught.value


# ------------------------------------------------------------------ accepted shapes


def test_every_openai_client_event_type_is_handled() -> None:
    union = typing.get_args(typing.get_args(RealtimeClientEvent)[0])
    openai_types = {typing.get_args(cls.model_fields["type"].annotation)[0] for cls in union}
    assert openai_types == set(CLIENT_EVENT_TYPES)


SDK_PARAMS: list[Any] = [
    InputAudioBufferCommitEventParam(type="input_audio_buffer.commit", event_id="c1"),
    InputAudioBufferClearEventParam(type="input_audio_buffer.clear"),
    OutputAudioBufferClearEventParam(type="output_audio_buffer.clear"),
    ConversationItemRetrieveEventParam(type="conversation.item.retrieve", item_id="item_1"),
    ConversationItemDeleteEventParam(type="conversation.item.delete", item_id="item_1"),
    ResponseCancelEventParam(type="response.cancel"),
    ResponseCancelEventParam(type="response.cancel", response_id="resp_1"),
    ResponseCreateEventParam(type="response.create"),
    ResponseCreateEventParam(
        type="response.create",
        event_id="agents_py_response_create_1",
        response={
            "conversation": "none",
            "instructions": "Classify.",
            "output_modalities": ["text"],
            "max_output_tokens": 200,
            "metadata": {"purpose": "classification"},
            "tool_choice": {"type": "function", "name": "lookup"},
            "tools": [
                {"type": "function", "name": "lookup", "description": "d", "parameters": {"type": "object"}},
                {
                    "type": "mcp",
                    "server_label": "docs",
                    "server_url": "https://mcp.example",
                    "require_approval": "never",
                },
            ],
            "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}},
            "input": [
                {
                    "type": "message",
                    "role": "system",
                    "content": [{"type": "input_text", "text": "Be brief."}],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Earlier"}],
                },
                {"type": "function_call", "name": "lookup", "arguments": "{}", "call_id": "call_1"},
                {"type": "function_call_output", "call_id": "call_1", "output": "42"},
            ],
            "prompt": {"id": "pmpt_1", "version": "2", "variables": {"city": "Oslo"}},
            "parallel_tool_calls": True,
            "reasoning": {"effort": "low"},
        },
    ),
    SessionUpdateEventParam(
        type="session.update",
        session={
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "noise_reduction": {"type": "near_field"},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": ""},
                    "turn_detection": {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500},
                }
            },
            "include": ["item.input_audio_transcription.logprobs"],
        },
    ),
]


@pytest.mark.parametrize("param", SDK_PARAMS, ids=lambda p: p["type"])
def test_sdk_param_events_are_accepted(param: Any) -> None:
    event = parse_client_event(json.dumps(param))
    assert event.type == param["type"]
    assert event.event_id == param.get("event_id")
    # Our own serialisation parses back to the same event.
    assert parse_client_event(event.to_json()) == event


def test_agents_sdk_session_updates_are_accepted() -> None:
    @function_tool
    def get_weather(city: str) -> str:
        """Get the weather for a city."""
        return city

    model = OpenAIRealtimeWebSocketModel()
    settings: Any = {"instructions": "Be brief.", "tools": [get_weather], "voice": "ash"}
    first = OpenAISessionUpdate(session=model._get_session_config(settings), type="session.update")
    tracing = OpenAISessionUpdate(
        session=RealtimeSessionCreateRequest(model=model.model, type="realtime", tracing="auto"),
        type="session.update",
    )
    for sdk_event in (first, tracing):
        event = parse_client_event(_frame(sdk_event))
        assert isinstance(event, SessionUpdateEvent)
        assert event.session["type"] == "realtime"


def test_agents_sdk_item_and_audio_events_are_accepted() -> None:
    user = parse_client_event(
        _frame(_ConversionHelper.convert_user_input_to_item_create(RealtimeModelSendUserInput("hi")))
    )
    assert isinstance(user, ConversationItemCreateEvent)
    assert isinstance(user.item, MessageItem) and user.item.role == "user"
    assert user.previous_item_id is None

    pcm = b"\x01\x00" * 480
    append = parse_client_event(
        _frame(
            _ConversionHelper.convert_audio_to_input_audio_buffer_append(
                RealtimeModelSendAudio(pcm, commit=False)
            )
        )
    )
    assert isinstance(append, InputAudioBufferAppendEvent)
    assert append.audio_bytes() == pcm

    truncate = parse_client_event(_frame(_ConversionHelper.convert_interrupt("item_1", 0, 1200)))
    assert truncate.type == "conversation.item.truncate"
    assert (truncate.item_id, truncate.content_index, truncate.audio_end_ms) == ("item_1", 0, 1200)


def test_function_call_output_and_item_reference() -> None:
    item = {"type": "function_call_output", "call_id": "call_1", "output": "{}"}
    created = parse_client_event(
        json.dumps({"type": "conversation.item.create", "previous_item_id": "root", "item": item})
    )
    assert isinstance(created, ConversationItemCreateEvent)
    assert isinstance(created.item, FunctionCallOutputItem)
    assert created.previous_item_id == "root"
    response = parse_client_event(
        json.dumps(
            {"type": "response.create", "response": {"input": [{"type": "item_reference", "id": "item_1"}]}}
        )
    )
    assert isinstance(response, ResponseCreateEvent) and response.response is not None
    assert response.response.input == [ItemReference(id="item_1")]


def test_bytes_frames_are_accepted() -> None:
    assert parse_client_event(b'{"type":"input_audio_buffer.commit"}').type == "input_audio_buffer.commit"


# ------------------------------------------------------------------ error paths

ERRORS: list[tuple[str, Any, str, str | None, str]] = [
    ("not json", "{nope", "invalid_json", None, "Invalid JSON in client event"),
    ("not utf-8", b"\xff\xfe{", "invalid_json", None, "Invalid JSON in client event"),
    ("array", "[1, 2]", "invalid_type", None, "Invalid type for client event: expected object, got array"),
    (
        "missing type",
        {"event_id": "e1"},
        "missing_required_parameter",
        "type",
        "Missing required parameter: 'type'.",
    ),
    (
        "type not string",
        {"type": 5, "event_id": "e1"},
        "invalid_type",
        "type",
        "expected string, got integer",
    ),
    (
        "unknown type",
        {"type": "foo", "event_id": "e1"},
        "invalid_value",
        "type",
        "Invalid value: 'foo'. Supported",
    ),
    (
        "beta type",
        {"type": "transcription_session.update", "event_id": "e1", "session": {}},
        "invalid_value",
        "type",
        "Invalid value: 'transcription_session.update'.",
    ),
    (
        "missing field",
        {"type": "conversation.item.retrieve", "event_id": "e1"},
        "missing_required_parameter",
        "item_id",
        "Missing required parameter: 'item_id'.",
    ),
    (
        "unknown field",
        {"type": "input_audio_buffer.commit", "event_id": "e1", "foo": 1},
        "unknown_parameter",
        "foo",
        "Unknown parameter: 'foo'.",
    ),
    (
        "wrong type",
        {
            "type": "conversation.item.truncate",
            "event_id": "e1",
            "item_id": "i",
            "content_index": "0",
            "audio_end_ms": 1,
        },
        "invalid_type",
        "content_index",
        "Invalid type for 'content_index': expected integer, got string",
    ),
    (
        "session not an object",
        {"type": "session.update", "event_id": "e1", "session": None},
        "invalid_type",
        "session",
        "Invalid type for 'session': expected object, got null",
    ),
    (
        "bad literal",
        {
            "type": "conversation.item.create",
            "event_id": "e1",
            "item": {"type": "message", "role": "bot", "content": []},
        },
        "invalid_value",
        "item.role",
        "Invalid value: 'bot'. Supported values are: 'system', 'user', and 'assistant'.",
    ),
    (
        "bad item type",
        {"type": "conversation.item.create", "event_id": "e1", "item": {"type": "reasoning"}},
        "invalid_value",
        "item.type",
        "Invalid value: 'reasoning'. Supported values are: 'message', 'function_call',",
    ),
    (
        "missing item type",
        {"type": "conversation.item.create", "event_id": "e1", "item": {"role": "user", "content": []}},
        "missing_required_parameter",
        "item.type",
        "Missing required parameter: 'item.type'.",
    ),
    (
        "unknown nested field",
        {
            "type": "conversation.item.create",
            "event_id": "e1",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "x", "foo": 1}],
            },
        },
        "unknown_parameter",
        "item.content[0].foo",
        "Unknown parameter: 'item.content[0].foo'.",
    ),
    (
        "bad base64",
        {"type": "input_audio_buffer.append", "event_id": "e1", "audio": "not base64!"},
        "invalid_value",
        "audio",
        "Invalid value for 'audio': expected base64-encoded audio.",
    ),
    (
        "bad base64 in item",
        {
            "type": "conversation.item.create",
            "event_id": "e1",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": "%%%"}]},
        },
        "invalid_value",
        "item.content[0].audio",
        "Invalid value for 'item.content[0].audio': expected base64-encoded audio.",
    ),
    (
        "bad role content",
        {
            "type": "conversation.item.create",
            "event_id": "e1",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "a"}, {"type": "output_text", "text": "b"}],
            },
        },
        "invalid_value",
        "item.content[1].type",
        "Invalid value: 'output_text'. Supported values for a 'user' message are: "
        "'input_text', 'input_audio', and 'input_image'.",
    ),
    (
        "system audio",
        {
            "type": "conversation.item.create",
            "event_id": "e1",
            "item": {
                "type": "message",
                "role": "system",
                "content": [{"type": "input_audio", "audio": "AAAA"}],
            },
        },
        "invalid_value",
        "item.content[0].type",
        "Supported values for a 'system' message are: 'input_text'.",
    ),
    (
        "client assistant audio",
        {
            "type": "conversation.item.create",
            "event_id": "e1",
            "item": {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_audio", "transcript": "x"}],
            },
        },
        "invalid_value",
        "item.content[0].type",
        "Invalid value: 'output_audio'.",
    ),
    (
        "metadata too many pairs",
        {
            "type": "response.create",
            "event_id": "e1",
            "response": {"metadata": {str(i): "v" for i in range(17)}},
        },
        "object_above_max_properties",
        "response.metadata",
        "Invalid 'response.metadata': too many properties. Expected an object with at most 16 properties",
    ),
    (
        "metadata value too long",
        {"type": "response.create", "event_id": "e1", "response": {"metadata": {"k": "v" * 513}}},
        "string_above_max_length",
        "response.metadata.k",
        "value too long. Expected a string with maximum length 512, but got a string with length 513",
    ),
    (
        "metadata key too long",
        {"type": "response.create", "event_id": "e1", "response": {"metadata": {"k" * 65: "v"}}},
        "string_above_max_length",
        "response.metadata." + "k" * 65,
        "metadata key too long. Expected a string with maximum length 64",
    ),
    (
        "bad tool choice",
        {"type": "response.create", "event_id": "e1", "response": {"tool_choice": "sometimes"}},
        "invalid_value",
        "response.tool_choice",
        "Invalid value: 'sometimes'. Supported values are: 'auto', 'none', and 'required'.",
    ),
    (
        "tool choice wrong kind",
        {"type": "response.create", "event_id": "e1", "response": {"tool_choice": 3}},
        "invalid_type",
        "response.tool_choice",
        "expected string or object, got integer",
    ),
    (
        "max tokens above limit",
        {"type": "response.create", "event_id": "e1", "response": {"max_output_tokens": 5000}},
        "integer_above_max_value",
        "response.max_output_tokens",
        "Expected a value <= 4096, but got 5000 instead.",
    ),
    (
        "both modalities",
        {"type": "response.create", "event_id": "e1", "response": {"output_modalities": ["audio", "text"]}},
        "invalid_value",
        "response.output_modalities",
        "expected exactly one of 'audio' or 'text'",
    ),
    (
        "mcp tool without server",
        {
            "type": "response.create",
            "event_id": "e1",
            "response": {"tools": [{"type": "mcp", "server_label": "x"}]},
        },
        "missing_required_parameter",
        "response.tools[0].server_url",
        "One of 'server_url', 'connector_id' or 'tunnel_id' must be provided.",
    ),
    (
        "negative audio_end_ms",
        {
            "type": "conversation.item.truncate",
            "event_id": "e1",
            "item_id": "i",
            "content_index": 0,
            "audio_end_ms": -1,
        },
        "integer_below_min_value",
        "audio_end_ms",
        "Expected a value >= 0, but got -1 instead.",
    ),
]


@pytest.mark.parametrize(
    ("frame", "code", "param", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_error_paths(frame: Any, code: str, param: str | None, message: str) -> None:
    error = _error(frame)
    assert error.code == code
    assert error.param == param
    assert message in error.message
    assert error.type == "invalid_request_error"
    expected_event_id = frame.get("event_id") if isinstance(frame, dict) else None
    assert error.event_id == expected_event_id


def test_unknown_type_lists_every_supported_type() -> None:
    message = _error({"type": "foo"}).message
    assert message.startswith("Invalid value: 'foo'. Supported values are: 'session.update', ")
    assert all(f"'{kind}'" in message for kind in CLIENT_EVENT_TYPES)
    assert message.endswith(", and 'response.cancel'.")


def test_event_id_is_only_echoed_when_it_is_a_string() -> None:
    error = _error({"type": "input_audio_buffer.commit", "event_id": 7})
    assert (error.code, error.param, error.event_id) == ("invalid_type", "event_id", None)


def test_strict_validation_does_not_coerce() -> None:
    assert _error({"type": "response.cancel", "response_id": 5}).code == "invalid_type"
    error = _error(
        {"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": 1.5}
    )
    assert (error.code, error.param) == ("invalid_type", "audio_end_ms")


def test_oversized_append_is_rejected() -> None:
    audio = base64.b64encode(b"\x00" * (MAX_APPEND_BYTES + 2)).decode()
    error = _error({"type": "input_audio_buffer.append", "audio": audio, "event_id": "big"})
    assert (error.code, error.param, error.event_id) == ("invalid_value", "audio", "big")
