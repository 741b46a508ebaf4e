"""Client events and ``parse_client_event``, the single entry point for client frames.

``parse_client_event`` raises ``ProtocolError`` with OpenAI-style codes:

* ``invalid_json`` — the frame is not UTF-8 JSON, or JSON Palaver refuses: nested deeper than
  ``bounds.MAX_FRAME_DEPTH``, ``NaN``/``Infinity``, a number out of a double's range, a lone
  surrogate (see ``bounds.loads_client_json``);
* ``invalid_type`` — the frame is not a JSON object, or a field has the wrong JSON type;
* ``missing_required_parameter`` — ``type`` or a required field is absent;
* ``invalid_value`` — unknown or beta-only ``type`` (param ``type``), bad literal, bad base64;
* ``unknown_parameter`` — a field the event does not define.

Whenever the frame is an object with a string ``event_id``, the error carries it.
Fields are validated strictly (no ``"1"`` -> ``1`` coercion). ``session.update`` keeps
``session`` as a raw dict: ``session_config.apply_session_update`` validates it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal, cast

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from .bounds import CLIENT_INPUT, ClientJsonError, loads_client_json
from .errors import ProtocolError
from .items import ConversationItem, InputAudioContent, MessageItem, client_audio_part_index
from .responses import ResponseCreateParams
from .validation_errors import custom_error, format_choices, translate_validation_error
from .wire import WireModel, json_type_name

#: Largest decoded audio chunk accepted by one ``input_audio_buffer.append``.
MAX_APPEND_BYTES = 15 * 1024 * 1024


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


class ClientEventBase(WireModel):
    """Fields shared by all client events."""

    type: str
    event_id: str | None = None


class SessionUpdateEvent(ClientEventBase):
    """Partial session update; see ``apply_session_update``."""

    type: Literal["session.update"] = "session.update"
    session: dict[str, Any]


class InputAudioBufferAppendEvent(ClientEventBase):
    """Base64 audio to append to the input buffer."""

    type: Literal["input_audio_buffer.append"] = "input_audio_buffer.append"
    audio: str
    _decoded: bytes | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _decode_audio(self) -> InputAudioBufferAppendEvent:
        try:
            self._decoded = base64.b64decode(self.audio, validate=True)
        except (binascii.Error, ValueError):
            raise custom_error(
                "invalid_value", "Invalid value for 'audio': expected base64-encoded audio.", at="audio"
            ) from None
        if len(self._decoded) > MAX_APPEND_BYTES:
            raise custom_error(
                "invalid_value",
                f"Invalid value for 'audio': {len(self._decoded)} bytes of audio exceed the "
                f"limit of {MAX_APPEND_BYTES} bytes per event.",
                at="audio",
            )
        return self

    def audio_bytes(self) -> bytes:
        """The decoded audio (decoded once, during validation)."""
        if self._decoded is None:
            self._decoded = base64.b64decode(self.audio)
        return self._decoded


class InputAudioBufferCommitEvent(ClientEventBase):
    """Turn the input buffer into a user item."""

    type: Literal["input_audio_buffer.commit"] = "input_audio_buffer.commit"


class InputAudioBufferClearEvent(ClientEventBase):
    """Drop the input buffer."""

    type: Literal["input_audio_buffer.clear"] = "input_audio_buffer.clear"


class OutputAudioBufferClearEvent(ClientEventBase):
    """WebRTC/SIP: stop playing the current response."""

    type: Literal["output_audio_buffer.clear"] = "output_audio_buffer.clear"


class ConversationItemCreateEvent(ClientEventBase):
    """Add an item; ``previous_item_id`` ``"root"`` inserts at the start, absent appends."""

    type: Literal["conversation.item.create"] = "conversation.item.create"
    previous_item_id: str | None = None
    item: ConversationItem

    @model_validator(mode="after")
    def _check_audio_parts(self) -> ConversationItemCreateEvent:
        index = client_audio_part_index(self.item)
        if index is not None:
            raise custom_error(
                "invalid_value",
                "Invalid value: 'output_audio'. Assistant messages created by the client "
                "support only 'output_text' content.",
                at=f"item.content[{index}].type",
            )
        if isinstance(self.item, MessageItem):
            for position, part in enumerate(self.item.content):
                if (
                    isinstance(part, InputAudioContent)
                    and part.audio is not None
                    and not _is_base64(part.audio)
                ):
                    raise custom_error(
                        "invalid_value",
                        "Invalid value for '{param}': expected base64-encoded audio.",
                        at=f"item.content[{position}].audio",
                    )
        return self


class ConversationItemRetrieveEvent(ClientEventBase):
    """Ask for the server's copy of an item (with audio)."""

    type: Literal["conversation.item.retrieve"] = "conversation.item.retrieve"
    item_id: str


class ConversationItemTruncateEvent(ClientEventBase):
    """Cut an assistant audio item at what the user heard."""

    type: Literal["conversation.item.truncate"] = "conversation.item.truncate"
    item_id: str
    content_index: int = Field(ge=0)
    audio_end_ms: int = Field(ge=0)


class ConversationItemDeleteEvent(ClientEventBase):
    """Remove an item."""

    type: Literal["conversation.item.delete"] = "conversation.item.delete"
    item_id: str


class ResponseCreateEvent(ClientEventBase):
    """Start a response, optionally with per-response overrides."""

    type: Literal["response.create"] = "response.create"
    response: ResponseCreateParams | None = None


class ResponseCancelEvent(ClientEventBase):
    """Cancel a response (default: the active one)."""

    type: Literal["response.cancel"] = "response.cancel"
    response_id: str | None = None


ClientEvent = Annotated[
    SessionUpdateEvent
    | InputAudioBufferAppendEvent
    | InputAudioBufferCommitEvent
    | InputAudioBufferClearEvent
    | OutputAudioBufferClearEvent
    | ConversationItemCreateEvent
    | ConversationItemRetrieveEvent
    | ConversationItemTruncateEvent
    | ConversationItemDeleteEvent
    | ResponseCreateEvent
    | ResponseCancelEvent,
    Field(discriminator="type"),
]

_EVENT_CLASSES: dict[str, type[ClientEventBase]] = {
    "session.update": SessionUpdateEvent,
    "input_audio_buffer.append": InputAudioBufferAppendEvent,
    "input_audio_buffer.commit": InputAudioBufferCommitEvent,
    "input_audio_buffer.clear": InputAudioBufferClearEvent,
    "output_audio_buffer.clear": OutputAudioBufferClearEvent,
    "conversation.item.create": ConversationItemCreateEvent,
    "conversation.item.retrieve": ConversationItemRetrieveEvent,
    "conversation.item.truncate": ConversationItemTruncateEvent,
    "conversation.item.delete": ConversationItemDeleteEvent,
    "response.create": ResponseCreateEvent,
    "response.cancel": ResponseCancelEvent,
}
CLIENT_EVENT_TYPES: tuple[str, ...] = tuple(_EVENT_CLASSES)


def parse_client_event(frame: str | bytes) -> ClientEvent:
    """Decode and validate one client frame, raising ``ProtocolError`` when it is invalid."""
    try:
        data = loads_client_json(frame)
    except ClientJsonError as exc:
        raise ProtocolError(f"Invalid JSON in client event: {exc}.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ProtocolError(
            f"Invalid type for client event: expected object, got {json_type_name(data)}", code="invalid_type"
        )
    event_id = data.get("event_id")
    event_id = event_id if isinstance(event_id, str) else None
    if "type" not in data:
        raise ProtocolError(
            "Missing required parameter: 'type'.",
            code="missing_required_parameter",
            param="type",
            event_id=event_id,
        )
    kind = data["type"]
    if not isinstance(kind, str):
        raise ProtocolError(
            f"Invalid type for 'type': expected string, got {json_type_name(kind)}",
            code="invalid_type",
            param="type",
            event_id=event_id,
        )
    model = _EVENT_CLASSES.get(kind)
    if model is None:
        raise ProtocolError(
            f"Invalid value: '{kind}'. Supported values are: {format_choices(CLIENT_EVENT_TYPES)}.",
            code="invalid_value",
            param="type",
            event_id=event_id,
        )
    try:
        return cast("ClientEvent", model.model_validate(data, strict=True, context=CLIENT_INPUT))
    except ValidationError as exc:
        raise translate_validation_error(exc, data, event_id=event_id) from None
