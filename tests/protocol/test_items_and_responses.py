"""Items (role rules, audio serialisation), responses (usage, metadata), ids and errors."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from palaver.protocol import (
    ErrorEvent,
    FunctionCallItem,
    InputAudioContent,
    InputImageContent,
    InputTextContent,
    MessageItem,
    OutputAudioContent,
    OutputTextContent,
    ProtocolError,
    RealtimeResponse,
    ResponseCreateParams,
    Usage,
    item_to_wire,
    new_id,
)
from tests.protocol.openai_check import validate_server_json


def test_new_id_format() -> None:
    ids = {new_id("item") for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"item_[A-Za-z0-9]{21}", value) for value in ids)
    assert re.fullmatch(r"rtc_[A-Za-z0-9]{21}", new_id("rtc"))


@pytest.mark.parametrize(
    ("role", "part", "allowed"),
    [
        ("system", InputTextContent(text="x"), True),
        ("system", InputAudioContent(audio="AAAA"), False),
        ("system", OutputTextContent(text="x"), False),
        ("user", InputTextContent(text="x"), True),
        ("user", InputAudioContent(audio="AAAA"), True),
        ("user", InputImageContent(image_url="data:image/png;base64,AAAA"), True),
        ("user", OutputAudioContent(transcript="x"), False),
        ("assistant", OutputTextContent(text="x"), True),
        ("assistant", OutputAudioContent(transcript="x"), True),
        ("assistant", InputTextContent(text="x"), False),
    ],
)
def test_message_content_must_fit_role(role: str, part: object, allowed: bool) -> None:
    data = {"role": role, "content": [part]}
    if allowed:
        assert MessageItem.model_validate(data).content == [part]
    else:
        with pytest.raises(ValidationError, match=f"for a '{role}' message"):
            MessageItem.model_validate(data)


def test_items_are_mutable_and_audio_is_opt_in() -> None:
    item = MessageItem(id="item_1", role="user", content=[InputAudioContent(audio="AAAA")])
    part = item.content[0]
    assert isinstance(part, InputAudioContent)
    part.transcript = "hello"
    item.status = "incomplete"
    assert item_to_wire(item)["content"] == [{"type": "input_audio", "transcript": "hello"}]
    assert item_to_wire(item, include_audio=True)["content"] == [
        {"type": "input_audio", "audio": "AAAA", "transcript": "hello"}
    ]
    assert item.to_dict()["status"] == "incomplete"


def test_client_items_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        FunctionCallItem.model_validate({"type": "function_call", "name": "f", "arguments": "{}", "foo": 1})


def test_usage_of_computes_totals() -> None:
    usage = Usage.of(text_in=59, audio_in=73, text_out=41, audio_out=147, cached=64)
    assert usage.to_dict() == {
        "total_tokens": 320,
        "input_tokens": 132,
        "output_tokens": 188,
        "input_token_details": {
            "text_tokens": 59,
            "audio_tokens": 73,
            "image_tokens": 0,
            "cached_tokens": 64,
            "cached_tokens_details": {"text_tokens": 59, "audio_tokens": 5, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 41, "audio_tokens": 147},
    }
    with_image = Usage.of(1, 2, 3, 4, image_in=5, cached=8)
    assert (with_image.input_tokens, with_image.total_tokens) == (8, 15)
    assert with_image.input_token_details.cached_tokens_details.image_tokens == 5
    with pytest.raises(ValueError, match="cached"):
        Usage.of(1, 1, 1, 1, cached=3)


def test_metadata_limits_at_the_edge() -> None:
    ResponseCreateParams(metadata={f"k{i}": "v" for i in range(16)})
    ResponseCreateParams(metadata={"k" * 64: "v" * 512})
    for metadata in ({f"k{i}": "v" for i in range(17)}, {"k" * 65: "v"}, {"k": "v" * 513}):
        with pytest.raises(ValidationError):
            ResponseCreateParams(metadata=metadata)


def test_response_created_shape_matches_capture() -> None:
    response = RealtimeResponse(id="resp_R", conversation_id="conv_1")
    assert response.to_dict() == {
        "id": "resp_R",
        "object": "realtime.response",
        "status": "in_progress",
        "status_details": None,
        "output": [],
        "conversation_id": "conv_1",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
        "usage": None,
        "metadata": None,
    }


def test_protocol_error_to_event() -> None:
    error = ProtocolError("Cancellation failed: no active response found", code="response_cancel_not_active")
    assert error.type == "invalid_request_error"
    event = error.to_event()
    assert isinstance(event, ErrorEvent)
    parsed = validate_server_json(event.to_json())
    assert parsed.error.model_dump() == {
        "type": "invalid_request_error",
        "code": "response_cancel_not_active",
        "message": "Cancellation failed: no active response found",
        "param": None,
        "event_id": None,
    }
    server = ProtocolError("boom", type="server_error", event_id="e1", param="x").to_event()
    assert (server.error.type, server.error.event_id, server.error.param, server.error.code) == (
        "server_error",
        "e1",
        "x",
        None,
    )
