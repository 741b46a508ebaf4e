"""Every server event serialises to JSON the official ``openai`` models accept."""

from __future__ import annotations

import inspect
import json

import pytest

from palaver.protocol import server_events as se
from palaver.protocol.items import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudioContent,
    InputImageContent,
    InputTextContent,
    McpApprovalRequestItem,
    McpApprovalResponseItem,
    McpCallItem,
    McpHttpError,
    McpListToolsItem,
    McpProtocolError,
    McpToolExecutionError,
    McpToolInfo,
    MessageItem,
    OutputAudioContent,
    OutputTextContent,
)
from palaver.protocol.responses import RealtimeResponse, ResponseError, ResponseStatusDetails, Usage
from palaver.protocol.session_config import new_realtime_session, new_transcription_session
from tests.protocol.openai_check import validate_server_json

R = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0}

USER_AUDIO = MessageItem(id="item_u", role="user", content=[InputAudioContent(audio="AAAA", transcript=None)])
ASSISTANT = MessageItem(
    id="item_a", status="completed", role="assistant", content=[OutputAudioContent(transcript="Hi there.")]
)
MCP_CALL = McpCallItem(
    id="item_m",
    server_label="docs",
    name="search",
    arguments='{"q":"x"}',
    error=McpProtocolError(code=-32600, message="bad request"),
)
DONE = RealtimeResponse(
    id="resp_1",
    status="completed",
    status_details=ResponseStatusDetails(type="completed"),
    output=[ASSISTANT],
    conversation_id="conv_1",
    usage=Usage.of(text_in=59, audio_in=73, text_out=41, audio_out=147, cached=64),
    metadata={"topic": "weather"},
)

SAMPLES: list[se.ServerEvent] = [
    se.SessionCreatedEvent(session=new_realtime_session("gpt-realtime", expires_at=1767233035)),
    se.SessionUpdatedEvent(session=new_transcription_session(expires_at=1767233035)),
    se.ConversationCreatedEvent(),
    se.ErrorEvent(error=se.ErrorDetail(code="invalid_value", message="Invalid value: 'x'.", param="type")),
    se.RateLimitsUpdatedEvent(
        rate_limits=[se.RateLimit(name="tokens", limit=40000, remaining=38490, reset_seconds=2.265)]
    ),
    se.InputAudioBufferSpeechStartedEvent(audio_start_ms=11956, item_id="item_u"),
    se.InputAudioBufferSpeechStoppedEvent(audio_end_ms=14720, item_id="item_u"),
    se.InputAudioBufferCommittedEvent(previous_item_id=None, item_id="item_u"),
    se.InputAudioBufferClearedEvent(),
    se.InputAudioBufferTimeoutTriggeredEvent(audio_start_ms=0, audio_end_ms=5000, item_id="item_u"),
    se.InputAudioBufferDtmfEventReceivedEvent(event="5", received_at=1767233035),
    se.ConversationItemAddedEvent(previous_item_id="item_prev", item=USER_AUDIO),
    se.ConversationItemDoneEvent(previous_item_id="item_u", item=ASSISTANT),
    se.ConversationItemCreatedEvent(
        previous_item_id=None, item=FunctionCallItem(id="item_f", call_id="call_1", name="f", arguments="{}")
    ),
    se.ConversationItemRetrievedEvent(item=USER_AUDIO),
    se.ConversationItemDeletedEvent(item_id="item_u"),
    se.ConversationItemTruncatedEvent(item_id="item_a", content_index=0, audio_end_ms=1500),
    se.ConversationItemInputAudioTranscriptionDeltaEvent(
        item_id="item_u", delta="Hel", logprobs=[se.LogProb(token="Hel", logprob=-0.1, bytes=[72, 101, 108])]
    ),
    se.ConversationItemInputAudioTranscriptionCompletedEvent(
        item_id="item_u",
        transcript="Hello.",
        usage=se.TranscriptionTokenUsage(
            input_tokens=10,
            output_tokens=3,
            total_tokens=13,
            input_token_details=se.TranscriptionInputTokenDetails(text_tokens=0, audio_tokens=10),
        ),
        languages=[se.TranscriptionLanguage(code="en")],
    ),
    se.ConversationItemInputAudioTranscriptionFailedEvent(
        item_id="item_u", error=se.TranscriptionError(type="server_error", code="stt_failed", message="boom")
    ),
    se.ConversationItemInputAudioTranscriptionSegmentEvent(
        item_id="item_u", id="seg_1", text="Hello.", speaker="A", start=0.0, end=0.8
    ),
    se.ResponseCreatedEvent(response=RealtimeResponse(id="resp_1", conversation_id="conv_1")),
    se.ResponseDoneEvent(response=DONE),
    se.ResponseOutputItemAddedEvent(response_id="resp_1", output_index=0, item=MCP_CALL),
    se.ResponseOutputItemDoneEvent(
        response_id="resp_1",
        output_index=0,
        item=McpListToolsItem(
            id="item_l",
            server_label="docs",
            tools=[McpToolInfo(name="search", input_schema={"type": "object"}, description="Search.")],
        ),
    ),
    se.ResponseContentPartAddedEvent(**R, content_index=0, part=se.ResponsePart(type="audio", transcript="")),
    se.ResponseContentPartDoneEvent(**R, content_index=0, part=se.ResponsePart(type="text", text="Hi.")),
    se.ResponseOutputTextDeltaEvent(**R, content_index=0, delta="Hi"),
    se.ResponseOutputTextDoneEvent(**R, content_index=0, text="Hi."),
    se.ResponseOutputAudioDeltaEvent(**R, content_index=0, delta="AAAAAA=="),
    se.ResponseOutputAudioDoneEvent(**R, content_index=0),
    se.ResponseOutputAudioTranscriptDeltaEvent(**R, content_index=0, delta="Hi", obfuscation="xyz"),
    se.ResponseOutputAudioTranscriptDoneEvent(**R, content_index=0, transcript="Hi."),
    se.ResponseFunctionCallArgumentsDeltaEvent(**R, call_id="call_1", delta='{"ci'),
    se.ResponseFunctionCallArgumentsDoneEvent(**R, call_id="call_1", name="f", arguments='{"city":"Oslo"}'),
    se.OutputAudioBufferStartedEvent(response_id="resp_1"),
    se.OutputAudioBufferStoppedEvent(response_id="resp_1"),
    se.OutputAudioBufferClearedEvent(response_id="resp_1"),
    se.McpListToolsInProgressEvent(item_id="item_l"),
    se.McpListToolsCompletedEvent(item_id="item_l"),
    se.McpListToolsFailedEvent(item_id="item_l"),
    se.ResponseMcpCallArgumentsDeltaEvent(**R, delta='{"q"', obfuscation="ab"),
    se.ResponseMcpCallArgumentsDoneEvent(**R, arguments='{"q":"x"}'),
    se.ResponseMcpCallInProgressEvent(item_id="item_m", output_index=0),
    se.ResponseMcpCallCompletedEvent(item_id="item_m", output_index=0),
    se.ResponseMcpCallFailedEvent(item_id="item_m", output_index=0),
]


def _defined_event_classes() -> set[type[se.ServerEvent]]:
    return {
        cls
        for _, cls in inspect.getmembers(se, inspect.isclass)
        if issubclass(cls, se.ServerEvent) and cls is not se.ServerEvent and cls.__module__ == se.__name__
    }


def test_samples_cover_every_server_event_class() -> None:
    sampled = [type(event) for event in SAMPLES]
    assert len(sampled) == len(set(sampled)), "one sample per class"
    assert set(sampled) == _defined_event_classes()


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: type(event).__name__)
def test_event_validates_against_openai(event: se.ServerEvent) -> None:
    parsed = validate_server_json(event.to_json())
    assert parsed.type == event.type


@pytest.mark.parametrize(
    "cls", sorted(_defined_event_classes(), key=lambda c: c.__name__), ids=lambda c: c.__name__
)
def test_class_name_follows_type(cls: type[se.ServerEvent]) -> None:
    event_type = cls.model_fields["type"].default
    camel = "".join(part.capitalize() for part in event_type.replace(".", "_").split("_"))
    assert cls.__name__ == camel + "Event"


def test_event_id_and_type_default() -> None:
    first, second = se.InputAudioBufferClearedEvent(), se.InputAudioBufferClearedEvent()
    assert first.type == "input_audio_buffer.cleared"
    assert first.event_id.startswith("event_") and len(first.event_id) == len("event_") + 21
    assert first.event_id != second.event_id


def test_to_json_is_compact_and_matches_to_dict() -> None:
    event = se.ResponseOutputAudioDeltaEvent(**R, content_index=0, delta="AAAA", event_id="event_1")
    text = event.to_json()
    assert text == (
        '{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1",'
        '"item_id":"item_1","output_index":0,"content_index":0,"delta":"AAAA"}'
    )
    assert json.loads(text) == event.to_dict()


def test_nullable_fields_are_sent_as_null() -> None:
    created = json.loads(se.ResponseCreatedEvent(response=RealtimeResponse()).to_json())["response"]
    assert created["status"] == "in_progress"
    assert created["output"] == []
    for key in ("status_details", "usage", "metadata", "conversation_id"):
        assert key in created and created[key] is None
    committed = json.loads(se.InputAudioBufferCommittedEvent(item_id="item_1").to_json())
    assert "previous_item_id" in committed and committed["previous_item_id"] is None
    added = json.loads(se.ConversationItemAddedEvent(item=USER_AUDIO).to_json())
    assert added["previous_item_id"] is None
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]


def test_unset_extras_are_omitted() -> None:
    delta = json.loads(se.ResponseOutputAudioTranscriptDeltaEvent(**R, content_index=0, delta="a").to_json())
    assert "obfuscation" not in delta
    transcription = json.loads(se.ConversationItemInputAudioTranscriptionDeltaEvent(item_id="i").to_json())
    assert "logprobs" not in transcription
    part = json.loads(
        se.ResponseContentPartAddedEvent(
            **R, content_index=0, part=se.ResponsePart(type="audio", transcript="")
        ).to_json()
    )["part"]
    assert part == {"type": "audio", "transcript": ""}
    cancelled = ResponseStatusDetails(type="cancelled", reason="turn_detected")
    assert cancelled.to_dict() == {"type": "cancelled", "reason": "turn_detected"}


def test_audio_bytes_only_in_retrieved() -> None:
    for event in (
        se.ConversationItemAddedEvent(item=USER_AUDIO),
        se.ConversationItemDoneEvent(item=USER_AUDIO),
        se.ResponseOutputItemDoneEvent(response_id="r", output_index=0, item=USER_AUDIO),
        se.ResponseDoneEvent(response=RealtimeResponse(output=[USER_AUDIO])),
    ):
        assert '"audio":"AAAA"' not in event.to_json()
    retrieved = json.loads(se.ConversationItemRetrievedEvent(item=USER_AUDIO).to_json())
    assert retrieved["item"]["content"][0] == {"type": "input_audio", "audio": "AAAA", "transcript": None}
    # Without audio set, retrieve omits the key rather than sending null.
    bare = MessageItem(id="i", role="assistant", content=[OutputAudioContent(transcript="t")])
    assert json.loads(se.ConversationItemRetrievedEvent(item=bare).to_json())["item"]["content"][0] == {
        "type": "output_audio",
        "transcript": "t",
    }


ITEMS = [
    MessageItem(id="i1", role="system", content=[InputTextContent(text="Be brief.")]),
    MessageItem(
        id="i2",
        role="user",
        content=[
            InputTextContent(text="Look"),
            InputAudioContent(transcript="hello"),
            InputImageContent(image_url="data:image/png;base64,AAAA", detail="low"),
        ],
    ),
    MessageItem(id="i3", role="assistant", status="incomplete", content=[OutputTextContent(text="Hi")]),
    MessageItem(id="i4", role="assistant", status="in_progress", content=[]),
    FunctionCallItem(id="i5", status="in_progress", call_id="call_1", name="f", arguments=""),
    FunctionCallOutputItem(id="i6", call_id="call_1", output='{"ok":true}'),
    McpListToolsItem(id="i7", server_label="docs", tools=[]),
    McpCallItem(id="i8", server_label="docs", name="s", arguments="{}", output="done"),
    McpCallItem(
        id="i9", server_label="d", name="s", arguments="{}", error=McpToolExecutionError(message="x")
    ),
    McpCallItem(
        id="i10", server_label="d", name="s", arguments="{}", error=McpHttpError(code=500, message="x")
    ),
    McpApprovalRequestItem(id="i11", server_label="docs", name="s", arguments="{}"),
    McpApprovalResponseItem(id="i12", approval_request_id="i11", approve=False, reason="no"),
]


@pytest.mark.parametrize("item", ITEMS, ids=lambda item: f"{item.type}-{item.id}")
def test_every_item_kind_validates_inside_events(item: se.WireModel) -> None:
    added = se.ConversationItemAddedEvent(previous_item_id="root", item=item)
    assert validate_server_json(added.to_json()).item.type == item.type
    retrieved = se.ConversationItemRetrievedEvent(item=item)
    validate_server_json(retrieved.to_json())


def test_failed_response_and_custom_voice_session_validate() -> None:
    failed = RealtimeResponse(
        status="failed",
        status_details=ResponseStatusDetails(
            type="failed",
            error=ResponseError(type="invalid_request_error", code="insufficient_quota", message="x"),
        ),
        output_modalities=["text"],
        max_output_tokens=256,
    )
    validate_server_json(se.ResponseDoneEvent(response=failed).to_json())
    session = new_realtime_session(
        "gpt-realtime", expires_at=1, overrides={"audio": {"output": {"voice": {"id": "v_1"}}}}
    )
    validate_server_json(se.SessionUpdatedEvent(session=session).to_json())


def test_duration_usage_validates() -> None:
    event = se.ConversationItemInputAudioTranscriptionCompletedEvent(
        item_id="item_u", transcript="", usage=se.TranscriptionDurationUsage(seconds=1.5)
    )
    validate_server_json(event.to_json())
