"""Conversation items and their content parts.

Audio bytes (``audio`` of ``input_audio``/``output_audio`` parts) are written only when
serialised with the context ``{"include_audio": True}`` — which only
``conversation.item.retrieved`` uses — and only when set. ``transcript`` is always
written (``null`` while unknown).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from .bounds import FreeJson
from .validation_errors import custom_error, format_choices
from .wire import Omittable, WireModel

ItemStatus = Literal["completed", "incomplete", "in_progress"]
Role = Literal["system", "user", "assistant"]


def _drop_audio_unless_asked(data: Any, info: SerializationInfo) -> Any:
    context = info.context
    wanted = isinstance(context, dict) and context.get("include_audio") is True
    if isinstance(data, dict) and (not wanted or data.get("audio") is None):
        data.pop("audio", None)
    return data


class InputTextContent(WireModel):
    """Text typed by the user (or system)."""

    type: Literal["input_text"] = "input_text"
    text: str


class InputAudioContent(WireModel):
    """User audio (base64 in the session's input format) and its transcript."""

    type: Literal["input_audio"] = "input_audio"
    audio: Omittable[str] = None
    transcript: str | None = None

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        return _drop_audio_unless_asked(handler(self), info)


class InputImageContent(WireModel):
    """An image as a ``data:`` URL (PNG or JPEG)."""

    type: Literal["input_image"] = "input_image"
    image_url: str
    detail: Literal["auto", "low", "high"] = "auto"


class OutputTextContent(WireModel):
    """Assistant text."""

    type: Literal["output_text"] = "output_text"
    text: str


class OutputAudioContent(WireModel):
    """Assistant audio and its transcript."""

    type: Literal["output_audio"] = "output_audio"
    audio: Omittable[str] = None
    transcript: str | None = None

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        return _drop_audio_unless_asked(handler(self), info)


ContentPart = Annotated[
    InputTextContent | InputAudioContent | InputImageContent | OutputTextContent | OutputAudioContent,
    Field(discriminator="type"),
]

#: Content part types each message role may carry.
ALLOWED_PART_TYPES: dict[str, tuple[str, ...]] = {
    "system": ("input_text",),
    "user": ("input_text", "input_audio", "input_image"),
    "assistant": ("output_text", "output_audio"),
}


class MessageItem(WireModel):
    """A system, user or assistant message."""

    id: str | None = None
    object: Literal["realtime.item"] = "realtime.item"
    type: Literal["message"] = "message"
    status: ItemStatus = "completed"
    role: Role
    content: list[ContentPart]
    phase: Omittable[Literal["commentary", "final_answer"]] = None

    @model_validator(mode="after")
    def _content_fits_role(self) -> MessageItem:
        allowed = ALLOWED_PART_TYPES[self.role]
        for index, part in enumerate(self.content):
            if part.type not in allowed:
                raise custom_error(
                    "invalid_value",
                    f"Invalid value: '{part.type}'. Supported values for a '{self.role}' message are: "
                    f"{format_choices(allowed)}.",
                    at=f"content[{index}].type",
                )
        return self


class FunctionCallItem(WireModel):
    """A function call made by the model; ``arguments`` is a JSON string."""

    id: str | None = None
    object: Literal["realtime.item"] = "realtime.item"
    type: Literal["function_call"] = "function_call"
    status: ItemStatus = "completed"
    call_id: str | None = None
    name: str
    arguments: str


class FunctionCallOutputItem(WireModel):
    """The result of a function call, sent by the client."""

    id: str | None = None
    object: Literal["realtime.item"] = "realtime.item"
    type: Literal["function_call_output"] = "function_call_output"
    status: ItemStatus = "completed"
    call_id: str
    output: str


class McpToolInfo(WireModel):
    """One tool listed by an MCP server."""

    name: str
    input_schema: FreeJson
    description: Omittable[str] = None
    annotations: Omittable[FreeJson] = None


class McpListToolsItem(WireModel):
    """The tools imported from one MCP server."""

    id: str | None = None
    type: Literal["mcp_list_tools"] = "mcp_list_tools"
    server_label: str
    tools: list[McpToolInfo]


class McpProtocolError(WireModel):
    """The MCP server answered with a protocol error."""

    type: Literal["protocol_error"] = "protocol_error"
    code: int
    message: str


class McpToolExecutionError(WireModel):
    """The MCP tool ran and failed."""

    type: Literal["tool_execution_error"] = "tool_execution_error"
    message: str


class McpHttpError(WireModel):
    """The MCP server answered with an HTTP error."""

    type: Literal["http_error"] = "http_error"
    code: int
    message: str


McpCallError = Annotated[McpProtocolError | McpToolExecutionError | McpHttpError, Field(discriminator="type")]


class McpCallItem(WireModel):
    """A call of an MCP tool and its outcome."""

    id: str | None = None
    type: Literal["mcp_call"] = "mcp_call"
    server_label: str
    name: str
    arguments: str
    approval_request_id: str | None = None
    output: str | None = None
    error: McpCallError | None = None


class McpApprovalRequestItem(WireModel):
    """The model asks the client to approve an MCP tool call."""

    id: str | None = None
    type: Literal["mcp_approval_request"] = "mcp_approval_request"
    server_label: str
    name: str
    arguments: str


class McpApprovalResponseItem(WireModel):
    """The client's answer to an approval request."""

    id: str | None = None
    type: Literal["mcp_approval_response"] = "mcp_approval_response"
    approval_request_id: str
    approve: bool
    reason: str | None = None


ConversationItem = Annotated[
    MessageItem
    | FunctionCallItem
    | FunctionCallOutputItem
    | McpListToolsItem
    | McpCallItem
    | McpApprovalRequestItem
    | McpApprovalResponseItem,
    Field(discriminator="type"),
]


def item_to_wire(item: WireModel, *, include_audio: bool = False) -> dict[str, Any]:
    """The JSON-ready dict of an item; audio bytes only with ``include_audio``."""
    return item.model_dump(mode="json", context={"include_audio": include_audio})


def client_audio_part_index(item: WireModel) -> int | None:
    """Index of an ``output_audio`` part in an assistant message (clients may not create those)."""
    if isinstance(item, MessageItem) and item.role == "assistant":
        for index, part in enumerate(item.content):
            if part.type == "output_audio":
                return index
    return None
