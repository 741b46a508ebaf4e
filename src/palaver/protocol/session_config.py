"""Effective session configuration (GA shape) and the ``session.update`` merge rules.

``apply_session_update`` deep-merges a client's partial ``session`` object into the
current configuration: only present fields change; ``null`` clears nullable fields
(``turn_detection``, ``transcription``, ``noise_reduction``, ``tracing``, ``prompt``,
``include``); lists and the objects in ``_REPLACED_WHOLE`` are replaced, not merged; an
object whose ``type`` changes (e.g. ``server_vad`` -> ``semantic_vad``) is replaced,
one keeping its ``type`` is merged field by field. The merged result is validated as a
whole, so errors carry ``session.*`` parameter paths, and nothing is applied unless all of it
is valid. Every number and size is bounded (``bounds.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import Discriminator, Field, Tag, ValidationError, field_validator

from .audio_config import (
    DEFAULT_TRANSCRIPTION_MODEL,
    DEFAULT_VOICE,
    AudioConfig,
    AudioFormat,
    AudioInputConfig,
    AudioOutputConfig,
    InputTranscription,
    NoiseReduction,
    PcmaFormat,
    PcmFormat,
    PcmuFormat,
    SemanticVad,
    ServerVad,
    TranscriptionAudioConfig,
    TranscriptionAudioInputConfig,
    TurnDetection,
    Voice,
    VoiceId,
    voice_name,
)
from .bounds import (
    CLIENT_INPUT,
    MAX_LIST_ITEMS,
    MAX_POST_INSTRUCTIONS_TOKENS,
    MAX_TOOLS,
    FreeJson,
    IdText,
    InstructionsText,
    LabelText,
    check_max_properties,
)
from .errors import ProtocolError
from .ids import new_id
from .tools import (
    FunctionTool,
    McpApprovalFilter,
    McpTool,
    McpToolFilter,
    Tool,
    ToolChoice,
    ToolChoiceFunction,
    ToolChoiceMcp,
)
from .validation_errors import custom_error, format_choices, translate_validation_error
from .wire import Omittable, WireModel, json_kind, json_type_name, type_or_kind

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_TRANSCRIPTION_MODEL",
    "DEFAULT_VOICE",
    "AudioConfig",
    "AudioFormat",
    "AudioInputConfig",
    "AudioOutputConfig",
    "FunctionTool",
    "Include",
    "InputTranscription",
    "MaxOutputTokens",
    "McpApprovalFilter",
    "McpTool",
    "McpToolFilter",
    "NoiseReduction",
    "OutputModality",
    "PcmFormat",
    "PcmaFormat",
    "PcmuFormat",
    "Prompt",
    "RealtimeSessionConfig",
    "Reasoning",
    "RetentionRatioTruncation",
    "SemanticVad",
    "ServerVad",
    "SessionConfig",
    "TokenLimits",
    "Tool",
    "ToolChoice",
    "ToolChoiceFunction",
    "ToolChoiceMcp",
    "Tracing",
    "TracingConfig",
    "TranscriptionAudioConfig",
    "TranscriptionAudioInputConfig",
    "TranscriptionSessionConfig",
    "Truncation",
    "TurnDetection",
    "Voice",
    "VoiceId",
    "apply_session_update",
    "new_realtime_session",
    "new_transcription_session",
    "voice_name",
]

DEFAULT_INSTRUCTIONS = "You are a helpful, friendly voice assistant. Keep answers short."

OutputModality = Literal["text", "audio"]
Include = Literal["item.input_audio_transcription.logprobs"]


def audio_only() -> list[OutputModality]:
    """The default ``output_modalities``."""
    return ["audio"]


MaxOutputTokens = Annotated[
    Annotated[int, Tag("number"), Field(ge=1, le=4096)] | Annotated[Literal["inf"], Tag("string")],
    Discriminator(json_kind),
]


#: A prompt variable: text, or an input content object (``input_text``, ``input_image`` …).
PromptVariable = Annotated[
    Annotated[InstructionsText, Tag("string")] | Annotated[FreeJson, Tag("object")],
    Discriminator(json_kind),
]


class Prompt(WireModel):
    """Reference to a stored prompt template and its variables."""

    id: LabelText
    version: Omittable[LabelText] = None
    variables: Omittable[Annotated[dict[LabelText, PromptVariable], check_max_properties(MAX_LIST_ITEMS)]] = (
        None
    )


class TracingConfig(WireModel):
    """Named tracing settings."""

    workflow_name: Omittable[IdText] = None
    group_id: Omittable[IdText] = None
    metadata: Omittable[FreeJson] = None


Tracing = Annotated[
    Annotated[Literal["auto"], Tag("string")] | Annotated[TracingConfig, Tag("object")],
    Discriminator(json_kind),
]


class TokenLimits(WireModel):
    """Token budget used by retention-ratio truncation."""

    post_instructions: Omittable[int] = Field(default=None, ge=0, le=MAX_POST_INSTRUCTIONS_TOKENS)


class RetentionRatioTruncation(WireModel):
    """Keep a fraction of the conversation when the context overflows."""

    type: Literal["retention_ratio"] = "retention_ratio"
    retention_ratio: float = Field(ge=0.0, le=1.0)
    token_limits: Omittable[TokenLimits] = None


Truncation = Annotated[
    Annotated[Literal["auto", "disabled"], Tag("string")]
    | Annotated[RetentionRatioTruncation, Tag("retention_ratio")],
    Discriminator(type_or_kind()),
]


class Reasoning(WireModel):
    """Reasoning effort for reasoning-capable models (2026)."""

    effort: Omittable[Literal["minimal", "low", "medium", "high", "xhigh"]] = None


def check_output_modalities(value: list[OutputModality] | None) -> list[OutputModality] | None:
    """Exactly one of ``audio`` / ``text``."""
    if value is not None and len(value) != 1:
        raise custom_error(
            "invalid_value",
            "Invalid value for '{param}': expected exactly one of 'audio' or 'text', "
            f"got {len(value)} values.",
        )
    return value


class RealtimeSessionConfig(WireModel):
    """The full effective configuration of a realtime (speech-to-speech) session."""

    type: Literal["realtime"] = "realtime"
    object: Literal["realtime.session"] = "realtime.session"
    id: str = Field(default_factory=lambda: new_id("sess"))
    model: str
    output_modalities: list[OutputModality] = Field(default_factory=audio_only)
    instructions: InstructionsText = DEFAULT_INSTRUCTIONS
    tools: list[Tool] = Field(default_factory=list, max_length=MAX_TOOLS)
    tool_choice: ToolChoice = "auto"
    max_output_tokens: MaxOutputTokens = "inf"
    tracing: Tracing | None = None
    truncation: Truncation = "auto"
    prompt: Prompt | None = None
    expires_at: int
    audio: AudioConfig = Field(default_factory=AudioConfig)
    include: list[Include] | None = Field(default=None, max_length=MAX_LIST_ITEMS)
    parallel_tool_calls: Omittable[bool] = None
    reasoning: Omittable[Reasoning] = None

    _check_modalities = field_validator("output_modalities")(check_output_modalities)


class TranscriptionSessionConfig(WireModel):
    """The full effective configuration of a transcription-only session."""

    type: Literal["transcription"] = "transcription"
    object: Literal["realtime.transcription_session"] = "realtime.transcription_session"
    id: str = Field(default_factory=lambda: new_id("sess"))
    expires_at: int
    audio: TranscriptionAudioConfig = Field(default_factory=TranscriptionAudioConfig)
    include: list[Include] | None = Field(default=None, max_length=MAX_LIST_ITEMS)


SessionConfig = Annotated[RealtimeSessionConfig | TranscriptionSessionConfig, Field(discriminator="type")]
SessionT = TypeVar("SessionT", bound=RealtimeSessionConfig | TranscriptionSessionConfig)

#: Builds the ``ProtocolError`` for ``(message, code, param relative to the prefix)``.
_Fail = Callable[[str, str, str], ProtocolError]

_SESSION_TYPES = ("realtime", "transcription")
#: Server-assigned fields a client may not send.
_READ_ONLY = ("object", "id", "expires_at")
#: Objects replaced wholesale by an update instead of merged field by field.
_REPLACED_WHOLE = frozenset({"format", "voice", "tool_choice", "tracing", "truncation", "prompt"})


def apply_session_update(
    current: SessionT, update: dict[str, Any], *, event_id: str | None, audio_output_started: bool
) -> SessionT:
    """Return a new configuration: ``current`` with the partial ``update`` applied.

    Raises ``ProtocolError`` (carrying ``event_id``) when the update is rejected.
    """
    return _apply(
        current, update, event_id=event_id, audio_output_started=audio_output_started, prefix="session"
    )


def new_realtime_session(
    model: str, *, expires_at: int, overrides: dict[str, Any] | None = None, prefix: str = "session"
) -> RealtimeSessionConfig:
    """A realtime session with server defaults, then ``overrides`` applied like an update.

    ``overrides`` may omit ``type``; ``prefix`` roots the ``param`` of errors.
    """
    session = RealtimeSessionConfig(model=model, expires_at=expires_at)
    if not overrides:
        return session
    return _apply(
        session, {"type": "realtime", **overrides}, event_id=None, audio_output_started=False, prefix=prefix
    )


def new_transcription_session(
    *, expires_at: int, overrides: dict[str, Any] | None = None, prefix: str = "session"
) -> TranscriptionSessionConfig:
    """A transcription session with server defaults, then ``overrides`` applied like an update."""
    session = TranscriptionSessionConfig(expires_at=expires_at)
    if not overrides:
        return session
    overrides = {"type": "transcription", **overrides}
    return _apply(session, overrides, event_id=None, audio_output_started=False, prefix=prefix)


def _apply(
    current: SessionT, update: object, *, event_id: str | None, audio_output_started: bool, prefix: str
) -> SessionT:
    def fail(message: str, code: str, param: str) -> ProtocolError:
        return ProtocolError(message, code=code, param=_at(prefix, param), event_id=event_id)

    if not isinstance(update, dict):
        got = json_type_name(update)
        raise ProtocolError(
            f"Invalid type for '{prefix}': expected object, got {got}",
            code="invalid_type",
            param=prefix or None,
        )
    _check_type(current, update, fail, prefix)
    for key in _READ_ONLY:
        if key in update:
            raise fail(f"Unknown parameter: '{_at(prefix, key)}'.", "unknown_parameter", key)
    if isinstance(current, RealtimeSessionConfig):
        _check_model(current, update, fail, prefix)
        _check_tracing(current, update, fail)
        if audio_output_started:
            _check_voice(current, update, fail)
    merged = _merge(current.model_dump(), update)
    try:
        return cast(SessionT, type(current).model_validate(merged, strict=True, context=CLIENT_INPUT))
    except ValidationError as exc:
        raise translate_validation_error(exc, merged, prefix=prefix, event_id=event_id) from None


def _at(prefix: str, param: str) -> str:
    return f"{prefix}.{param}" if prefix else param


def _check_type(current: WireModel, update: dict[str, Any], fail: _Fail, prefix: str) -> None:
    if "type" not in update:
        raise fail(
            f"Missing required parameter: '{_at(prefix, 'type')}'.", "missing_required_parameter", "type"
        )
    kind = update["type"]
    if not isinstance(kind, str):
        got = json_type_name(kind)
        raise fail(
            f"Invalid type for '{_at(prefix, 'type')}': expected string, got {got}", "invalid_type", "type"
        )
    if kind not in _SESSION_TYPES:
        message = f"Invalid value: '{kind}'. Supported values are: {format_choices(_SESSION_TYPES)}."
        raise fail(message, "invalid_value", "type")
    current_kind = "realtime" if isinstance(current, RealtimeSessionConfig) else "transcription"
    if kind != current_kind:
        message = f"Passing a {kind} session update event to a {current_kind} session is not allowed."
        raise fail(message, "invalid_value", "type")


def _check_model(current: RealtimeSessionConfig, update: dict[str, Any], fail: _Fail, prefix: str) -> None:
    if "model" not in update:
        return
    model = update["model"]
    if not isinstance(model, str):
        got = json_type_name(model)
        raise fail(
            f"Invalid type for '{_at(prefix, 'model')}': expected string, got {got}", "invalid_type", "model"
        )
    if model != current.model:
        message = (
            f"Cannot change the model of a session: it is '{current.model}', "
            f"the update asks for '{model}'. Open a new session to use another model."
        )
        raise fail(message, "invalid_value", "model")


def _check_tracing(current: RealtimeSessionConfig, update: dict[str, Any], fail: _Fail) -> None:
    if current.tracing is None or "tracing" not in update:
        return
    now = current.tracing if isinstance(current.tracing, str) else current.tracing.model_dump()
    if update["tracing"] != now:
        raise fail("Tracing cannot be modified once it is enabled for a session.", "invalid_value", "tracing")


def _check_voice(current: RealtimeSessionConfig, update: dict[str, Any], fail: _Fail) -> None:
    audio = update.get("audio")
    output = audio.get("output") if isinstance(audio, dict) else None
    if not isinstance(output, dict) or "voice" not in output:
        return
    voice = output["voice"]
    requested = voice.get("id") if isinstance(voice, dict) else voice
    if requested != voice_name(current.audio.output.voice):
        raise fail(
            "Cannot update a conversation's voice if assistant audio is present.",
            "cannot_update_voice",
            "audio.output.voice",
        )


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        old = merged.get(key)
        if (
            isinstance(value, dict)
            and isinstance(old, dict)
            and key not in _REPLACED_WHOLE
            and value.get("type", old.get("type")) == old.get("type")
        ):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged
