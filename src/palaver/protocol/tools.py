"""Tool definitions (function and MCP) and tool choice, shared by sessions and responses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from .bounds import (
    MAX_HEADERS,
    MAX_LIST_ITEMS,
    ClientDescription,
    DescriptionText,
    FreeJson,
    IdText,
    LabelText,
    ToolName,
    check_max_properties,
)
from .validation_errors import custom_error
from .wire import Omittable, WireModel, json_kind, type_or_kind

McpConnectorId = Literal[
    "connector_dropbox",
    "connector_gmail",
    "connector_googlecalendar",
    "connector_googledrive",
    "connector_microsoftteams",
    "connector_outlookcalendar",
    "connector_outlookemail",
    "connector_sharepoint",
]


#: MCP tool names in a filter (an MCP tool name is not a function name: any text, bounded).
ToolNames = Annotated[list[LabelText], Field(max_length=MAX_LIST_ITEMS)]


class FunctionTool(WireModel):
    """A function the model may call; ``parameters`` is a JSON Schema."""

    type: Literal["function"] = "function"
    name: ToolName
    description: Omittable[ClientDescription] = None
    parameters: Omittable[FreeJson] = None


class McpToolFilter(WireModel):
    """Selects MCP tools by name and/or read-only annotation."""

    tool_names: Omittable[ToolNames] = None
    read_only: Omittable[bool] = None


class McpApprovalFilter(WireModel):
    """Which MCP tools always / never need approval."""

    always: Omittable[McpToolFilter] = None
    never: Omittable[McpToolFilter] = None


McpAllowedTools = Annotated[
    Annotated[ToolNames, Tag("array")] | Annotated[McpToolFilter, Tag("object")],
    Discriminator(json_kind),
]
McpRequireApproval = Annotated[
    Annotated[Literal["always", "never"], Tag("string")] | Annotated[McpApprovalFilter, Tag("object")],
    Discriminator(json_kind),
]


class McpTool(WireModel):
    """A remote MCP server (or connector) whose tools the model may call."""

    type: Literal["mcp"] = "mcp"
    server_label: LabelText
    server_url: Omittable[IdText] = None
    connector_id: Omittable[McpConnectorId] = None
    authorization: Omittable[IdText] = None
    headers: Omittable[Annotated[dict[LabelText, IdText], check_max_properties(MAX_HEADERS)]] = None
    allowed_tools: Omittable[McpAllowedTools] = None
    require_approval: Omittable[McpRequireApproval] = None
    server_description: Omittable[DescriptionText] = None
    tunnel_id: Omittable[IdText] = None
    defer_loading: Omittable[bool] = None
    allowed_callers: Omittable[
        Annotated[list[Literal["direct", "programmatic"]], Field(max_length=MAX_LIST_ITEMS)]
    ] = None

    @model_validator(mode="after")
    def _needs_a_server(self) -> McpTool:
        if self.server_url is None and self.connector_id is None and self.tunnel_id is None:
            raise custom_error(
                "missing_required_parameter",
                "Missing required parameter: '{param}'. "
                "One of 'server_url', 'connector_id' or 'tunnel_id' must be provided.",
                at="server_url",
            )
        return self


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[McpTool, Tag("mcp")],
    Discriminator(type_or_kind(default="function")),
]


class ToolChoiceFunction(WireModel):
    """Force a call of the named function."""

    type: Literal["function"] = "function"
    name: LabelText


class ToolChoiceMcp(WireModel):
    """Force a call of an MCP server's tool."""

    type: Literal["mcp"] = "mcp"
    server_label: LabelText
    name: Omittable[LabelText] = None


ToolChoice = Annotated[
    Annotated[Literal["auto", "none", "required"], Tag("string")]
    | Annotated[ToolChoiceFunction, Tag("function")]
    | Annotated[ToolChoiceMcp, Tag("mcp")],
    Discriminator(type_or_kind()),
]
