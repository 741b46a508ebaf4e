"""``response.create`` parameters and the Response object with its usage."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from .audio_config import DEFAULT_VOICE, AudioFormat, PcmFormat, Voice
from .bounds import MAX_LIST_ITEMS, MAX_TOOLS, InstructionsText
from .ids import new_id
from .items import ConversationItem, client_audio_part_index
from .session_config import (
    MaxOutputTokens,
    OutputModality,
    Prompt,
    Reasoning,
    audio_only,
    check_output_modalities,
)
from .tools import Tool, ToolChoice
from .validation_errors import custom_error
from .wire import Omittable, WireModel

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 512

ResponseStatus = Literal["in_progress", "completed", "cancelled", "failed", "incomplete"]


class ItemReference(WireModel):
    """An existing conversation item used as ``response.input`` (by id)."""

    type: Literal["item_reference"] = "item_reference"
    id: str


ResponseInputEntry = Annotated[ConversationItem | ItemReference, Field(discriminator="type")]


class ResponseAudioOutputParams(WireModel):
    """Per-response override of the output audio format and voice."""

    format: AudioFormat | None = None
    voice: Voice | None = None


class ResponseAudioParams(WireModel):
    """``response.audio`` of ``response.create``."""

    output: ResponseAudioOutputParams | None = None


def check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    """At most 16 pairs; keys up to 64 characters, values up to 512."""
    if value is None:
        return None
    if len(value) > MAX_METADATA_PAIRS:
        raise custom_error(
            "object_above_max_properties",
            f"Invalid '{{param}}': too many properties. Expected an object with at most "
            f"{MAX_METADATA_PAIRS} properties, but got an object with {len(value)} properties instead.",
        )
    for key, text in value.items():
        for what, size, limit in (
            ("key", len(key), MAX_METADATA_KEY_LENGTH),
            ("value", len(text), MAX_METADATA_VALUE_LENGTH),
        ):
            if size > limit:
                raise custom_error(
                    "string_above_max_length",
                    f"Invalid '{{param}}': metadata {what} too long. Expected a string with maximum "
                    f"length {limit}, but got a string with length {size} instead.",
                    at=key,
                )
    return value


class ResponseCreateParams(WireModel):
    """The ``response`` object of ``response.create``: per-response overrides."""

    conversation: Literal["auto", "none"] | None = None
    input: list[ResponseInputEntry] | None = Field(default=None, max_length=MAX_LIST_ITEMS)
    instructions: InstructionsText | None = None
    tools: list[Tool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    max_output_tokens: MaxOutputTokens | None = None
    prompt: Prompt | None = None
    output_modalities: list[OutputModality] | None = None
    audio: ResponseAudioParams | None = None
    metadata: dict[str, str] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: Reasoning | None = None

    _check_modalities = field_validator("output_modalities")(check_output_modalities)
    _check_metadata = field_validator("metadata")(check_metadata)

    @model_validator(mode="after")
    def _no_client_assistant_audio(self) -> ResponseCreateParams:
        for position, entry in enumerate(self.input or []):
            index = client_audio_part_index(entry)
            if index is not None:
                raise custom_error(
                    "invalid_value",
                    "Invalid value: 'output_audio'. Assistant messages created by the client "
                    "support only 'output_text' content.",
                    at=f"input[{position}].content[{index}].type",
                )
        return self


class ResponseError(WireModel):
    """Why a response failed."""

    type: str
    code: str | None = None
    message: Omittable[str] = None


class ResponseStatusDetails(WireModel):
    """Details of a non-``in_progress`` status."""

    type: Literal["completed", "cancelled", "incomplete", "failed"]
    reason: Omittable[Literal["turn_detected", "client_cancelled", "max_output_tokens", "content_filter"]] = (
        None
    )
    error: Omittable[ResponseError] = None


class ResponseAudioOutput(WireModel):
    """Audio format and voice a response speaks with."""

    format: AudioFormat = Field(default_factory=PcmFormat)
    voice: Voice = DEFAULT_VOICE


class ResponseAudio(WireModel):
    """``audio`` of a Response object."""

    output: ResponseAudioOutput = Field(default_factory=ResponseAudioOutput)


class CachedTokensDetails(WireModel):
    """Breakdown of cached input tokens."""

    text_tokens: int = 0
    audio_tokens: int = 0
    image_tokens: int = 0


class InputTokenDetails(WireModel):
    """Breakdown of input tokens."""

    text_tokens: int = 0
    audio_tokens: int = 0
    image_tokens: int = 0
    cached_tokens: int = 0
    cached_tokens_details: CachedTokensDetails = Field(default_factory=CachedTokensDetails)


class OutputTokenDetails(WireModel):
    """Breakdown of output tokens."""

    text_tokens: int = 0
    audio_tokens: int = 0


class Usage(WireModel):
    """Token usage of one response."""

    total_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    input_token_details: InputTokenDetails = Field(default_factory=InputTokenDetails)
    output_token_details: OutputTokenDetails = Field(default_factory=OutputTokenDetails)

    @classmethod
    def of(
        cls,
        text_in: int,
        audio_in: int,
        text_out: int,
        audio_out: int,
        image_in: int = 0,
        cached: int = 0,
    ) -> Usage:
        """Usage with totals computed; ``cached`` input counts as text, then audio, then image."""
        input_tokens = text_in + audio_in + image_in
        if not 0 <= cached <= input_tokens:
            raise ValueError(
                f"cached tokens ({cached}) must be between 0 and the input tokens ({input_tokens})"
            )
        cached_text = min(cached, text_in)
        cached_audio = min(cached - cached_text, audio_in)
        cached_image = cached - cached_text - cached_audio
        return cls(
            total_tokens=input_tokens + text_out + audio_out,
            input_tokens=input_tokens,
            output_tokens=text_out + audio_out,
            input_token_details=InputTokenDetails(
                text_tokens=text_in,
                audio_tokens=audio_in,
                image_tokens=image_in,
                cached_tokens=cached,
                cached_tokens_details=CachedTokensDetails(
                    text_tokens=cached_text, audio_tokens=cached_audio, image_tokens=cached_image
                ),
            ),
            output_token_details=OutputTokenDetails(text_tokens=text_out, audio_tokens=audio_out),
        )


class RealtimeResponse(WireModel):
    """The Response object carried by ``response.created`` / ``response.done``."""

    id: str = Field(default_factory=lambda: new_id("resp"))
    object: Literal["realtime.response"] = "realtime.response"
    status: ResponseStatus = "in_progress"
    status_details: ResponseStatusDetails | None = None
    output: list[ConversationItem] = Field(default_factory=list)
    conversation_id: str | None = None
    output_modalities: list[OutputModality] = Field(default_factory=audio_only)
    max_output_tokens: MaxOutputTokens = "inf"
    audio: ResponseAudio = Field(default_factory=ResponseAudio)
    usage: Usage | None = None
    metadata: dict[str, Any] | None = None
