"""Server events, one class per GA event type (CamelCase of the type + ``Event``).

Every event has ``event_id`` (a fresh ``event_…`` id unless given) and ``type``
(defaulting to its own type string). ``to_json()`` gives compact JSON; fields typed
``Omittable`` are left out while ``None``, every other field is always written (``None``
as ``null``). Audio bytes inside items appear only in ``conversation.item.retrieved``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .ids import new_id
from .items import ConversationItem
from .responses import RealtimeResponse
from .session_config import SessionConfig
from .wire import Omittable, WireModel


def _event_id() -> str:
    return new_id("event")


class ServerEvent(WireModel):
    """Base of all server events."""

    type: str
    event_id: str = Field(default_factory=_event_id)


# ----------------------------------------------------------------- session, conversation, errors


class SessionCreatedEvent(ServerEvent):
    """First event of every session."""

    type: Literal["session.created"] = "session.created"
    session: SessionConfig


class SessionUpdatedEvent(ServerEvent):
    """The full effective session after a ``session.update``."""

    type: Literal["session.updated"] = "session.updated"
    session: SessionConfig


class ConversationInfo(WireModel):
    """The conversation of ``conversation.created``."""

    id: str = Field(default_factory=lambda: new_id("conv"))
    object: Literal["realtime.conversation"] = "realtime.conversation"


class ConversationCreatedEvent(ServerEvent):
    """Legacy (beta-era) announcement of the default conversation."""

    type: Literal["conversation.created"] = "conversation.created"
    conversation: ConversationInfo = Field(default_factory=ConversationInfo)


class ErrorDetail(WireModel):
    """The ``error`` object of an ``error`` event."""

    type: str = "invalid_request_error"
    code: str | None = None
    message: str
    param: str | None = None
    event_id: str | None = None


class ErrorEvent(ServerEvent):
    """A (usually non-fatal) error; ``error.event_id`` names the offending client event."""

    type: Literal["error"] = "error"
    error: ErrorDetail


class RateLimit(WireModel):
    """One rate limit bucket."""

    name: Literal["requests", "tokens"]
    limit: int
    remaining: int
    reset_seconds: float


class RateLimitsUpdatedEvent(ServerEvent):
    """Rate limits after a response."""

    type: Literal["rate_limits.updated"] = "rate_limits.updated"
    rate_limits: list[RateLimit]


# ----------------------------------------------------------------- input audio buffer


class InputAudioBufferSpeechStartedEvent(ServerEvent):
    """VAD detected speech; ``item_id`` is the user item to come."""

    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class InputAudioBufferSpeechStoppedEvent(ServerEvent):
    """VAD detected the end of speech."""

    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class InputAudioBufferCommittedEvent(ServerEvent):
    """The buffer became a user item."""

    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    previous_item_id: str | None = None
    item_id: str


class InputAudioBufferClearedEvent(ServerEvent):
    """The buffer was emptied."""

    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class InputAudioBufferTimeoutTriggeredEvent(ServerEvent):
    """Idle timeout of ``server_vad`` fired."""

    type: Literal["input_audio_buffer.timeout_triggered"] = "input_audio_buffer.timeout_triggered"
    audio_start_ms: int
    audio_end_ms: int
    item_id: str


class InputAudioBufferDtmfEventReceivedEvent(ServerEvent):
    """A DTMF key pressed on a SIP call. OpenAI's type has no ``event_id``, so none is sent."""

    type: Literal["input_audio_buffer.dtmf_event_received"] = "input_audio_buffer.dtmf_event_received"
    event: str
    received_at: int

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", context=self.wire_context, exclude={"event_id"})

    def to_json(self) -> str:
        return self.model_dump_json(context=self.wire_context, exclude={"event_id"})


# ----------------------------------------------------------------- conversation items


class ConversationItemAddedEvent(ServerEvent):
    """An item entered the conversation."""

    type: Literal["conversation.item.added"] = "conversation.item.added"
    previous_item_id: str | None = None
    item: ConversationItem


class ConversationItemDoneEvent(ServerEvent):
    """An item is final."""

    type: Literal["conversation.item.done"] = "conversation.item.done"
    previous_item_id: str | None = None
    item: ConversationItem


class ConversationItemCreatedEvent(ServerEvent):
    """Legacy name of ``conversation.item.added``."""

    type: Literal["conversation.item.created"] = "conversation.item.created"
    previous_item_id: str | None = None
    item: ConversationItem


class ConversationItemRetrievedEvent(ServerEvent):
    """Answer to ``conversation.item.retrieve``: the only event carrying item audio bytes."""

    wire_context: ClassVar[dict[str, Any] | None] = {"include_audio": True}

    type: Literal["conversation.item.retrieved"] = "conversation.item.retrieved"
    item: ConversationItem


class ConversationItemDeletedEvent(ServerEvent):
    """An item was deleted."""

    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    item_id: str


class ConversationItemTruncatedEvent(ServerEvent):
    """An assistant audio item was truncated."""

    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str
    content_index: int
    audio_end_ms: int


# ----------------------------------------------------------------- input audio transcription


class LogProb(WireModel):
    """Log probability of one token."""

    token: str
    logprob: float
    bytes: list[int]


class TranscriptionLanguage(WireModel):
    """A language detected in the audio (2026)."""

    code: str


class TranscriptionInputTokenDetails(WireModel):
    """Input token breakdown of a transcription."""

    text_tokens: int = 0
    audio_tokens: int = 0


class TranscriptionTokenUsage(WireModel):
    """Transcription billed by tokens."""

    type: Literal["tokens"] = "tokens"
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_token_details: Omittable[TranscriptionInputTokenDetails] = None


class TranscriptionDurationUsage(WireModel):
    """Transcription billed by audio duration."""

    type: Literal["duration"] = "duration"
    seconds: float


TranscriptionUsage = Annotated[
    TranscriptionTokenUsage | TranscriptionDurationUsage, Field(discriminator="type")
]


class TranscriptionError(WireModel):
    """Why a transcription failed."""

    type: str | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None


class ConversationItemInputAudioTranscriptionDeltaEvent(ServerEvent):
    """Partial transcript of a user audio item."""

    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str = ""
    logprobs: Omittable[list[LogProb]] = None


class ConversationItemInputAudioTranscriptionCompletedEvent(ServerEvent):
    """Final transcript of a user audio item."""

    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    usage: TranscriptionUsage
    logprobs: Omittable[list[LogProb]] = None
    languages: Omittable[list[TranscriptionLanguage]] = None


class ConversationItemInputAudioTranscriptionFailedEvent(ServerEvent):
    """Transcription of a user audio item failed."""

    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    item_id: str
    content_index: int = 0
    error: TranscriptionError


class ConversationItemInputAudioTranscriptionSegmentEvent(ServerEvent):
    """A diarized transcript segment."""

    type: Literal["conversation.item.input_audio_transcription.segment"] = (
        "conversation.item.input_audio_transcription.segment"
    )
    item_id: str
    content_index: int = 0
    id: str
    text: str
    speaker: str
    start: float
    end: float


# ----------------------------------------------------------------- responses


class ResponsePart(WireModel):
    """The ``part`` of ``response.content_part.*`` (types ``audio``/``text``, not ``output_*``)."""

    type: Literal["audio", "text"]
    text: Omittable[str] = None
    transcript: Omittable[str] = None
    audio: Omittable[str] = None


class ResponseCreatedEvent(ServerEvent):
    """A response started."""

    type: Literal["response.created"] = "response.created"
    response: RealtimeResponse


class ResponseDoneEvent(ServerEvent):
    """A response ended (completed, cancelled, failed or incomplete)."""

    type: Literal["response.done"] = "response.done"
    response: RealtimeResponse


class ResponseOutputItemAddedEvent(ServerEvent):
    """A response started an output item."""

    type: Literal["response.output_item.added"] = "response.output_item.added"
    response_id: str
    output_index: int
    item: ConversationItem


class ResponseOutputItemDoneEvent(ServerEvent):
    """A response finished an output item."""

    type: Literal["response.output_item.done"] = "response.output_item.done"
    response_id: str
    output_index: int
    item: ConversationItem


class ResponseContentPartAddedEvent(ServerEvent):
    """A content part started."""

    type: Literal["response.content_part.added"] = "response.content_part.added"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: ResponsePart


class ResponseContentPartDoneEvent(ServerEvent):
    """A content part finished."""

    type: Literal["response.content_part.done"] = "response.content_part.done"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: ResponsePart


class ResponseOutputTextDeltaEvent(ServerEvent):
    """A chunk of output text."""

    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ResponseOutputTextDoneEvent(ServerEvent):
    """Output text finished."""

    type: Literal["response.output_text.done"] = "response.output_text.done"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    text: str


class ResponseOutputAudioDeltaEvent(ServerEvent):
    """A chunk of output audio (base64, session output format)."""

    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ResponseOutputAudioDoneEvent(ServerEvent):
    """Output audio finished."""

    type: Literal["response.output_audio.done"] = "response.output_audio.done"
    response_id: str
    item_id: str
    output_index: int
    content_index: int


class ResponseOutputAudioTranscriptDeltaEvent(ServerEvent):
    """A chunk of the spoken text; ``obfuscation`` is optional padding."""

    type: Literal["response.output_audio_transcript.delta"] = "response.output_audio_transcript.delta"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str
    obfuscation: Omittable[str] = None


class ResponseOutputAudioTranscriptDoneEvent(ServerEvent):
    """The spoken text finished."""

    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    transcript: str


class ResponseFunctionCallArgumentsDeltaEvent(ServerEvent):
    """A chunk of function call arguments."""

    type: Literal["response.function_call_arguments.delta"] = "response.function_call_arguments.delta"
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    delta: str


class ResponseFunctionCallArgumentsDoneEvent(ServerEvent):
    """Function call arguments finished."""

    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    name: str
    arguments: str


class OutputAudioBufferStartedEvent(ServerEvent):
    """WebRTC/SIP: playback of a response started."""

    type: Literal["output_audio_buffer.started"] = "output_audio_buffer.started"
    response_id: str


class OutputAudioBufferStoppedEvent(ServerEvent):
    """WebRTC/SIP: the output buffer drained."""

    type: Literal["output_audio_buffer.stopped"] = "output_audio_buffer.stopped"
    response_id: str


class OutputAudioBufferClearedEvent(ServerEvent):
    """WebRTC/SIP: the output buffer was cleared."""

    type: Literal["output_audio_buffer.cleared"] = "output_audio_buffer.cleared"
    response_id: str


# ----------------------------------------------------------------- MCP


class McpListToolsInProgressEvent(ServerEvent):
    """Listing the tools of an MCP server."""

    type: Literal["mcp_list_tools.in_progress"] = "mcp_list_tools.in_progress"
    item_id: str


class McpListToolsCompletedEvent(ServerEvent):
    """Listed the tools of an MCP server."""

    type: Literal["mcp_list_tools.completed"] = "mcp_list_tools.completed"
    item_id: str


class McpListToolsFailedEvent(ServerEvent):
    """Listing the tools of an MCP server failed."""

    type: Literal["mcp_list_tools.failed"] = "mcp_list_tools.failed"
    item_id: str


class ResponseMcpCallArgumentsDeltaEvent(ServerEvent):
    """A chunk of MCP call arguments."""

    type: Literal["response.mcp_call_arguments.delta"] = "response.mcp_call_arguments.delta"
    response_id: str
    item_id: str
    output_index: int
    delta: str
    obfuscation: Omittable[str] = None


class ResponseMcpCallArgumentsDoneEvent(ServerEvent):
    """MCP call arguments finished."""

    type: Literal["response.mcp_call_arguments.done"] = "response.mcp_call_arguments.done"
    response_id: str
    item_id: str
    output_index: int
    arguments: str


class ResponseMcpCallInProgressEvent(ServerEvent):
    """An MCP call started."""

    type: Literal["response.mcp_call.in_progress"] = "response.mcp_call.in_progress"
    item_id: str
    output_index: int


class ResponseMcpCallCompletedEvent(ServerEvent):
    """An MCP call succeeded."""

    type: Literal["response.mcp_call.completed"] = "response.mcp_call.completed"
    item_id: str
    output_index: int


class ResponseMcpCallFailedEvent(ServerEvent):
    """An MCP call failed."""

    type: Literal["response.mcp_call.failed"] = "response.mcp_call.failed"
    item_id: str
    output_index: int
