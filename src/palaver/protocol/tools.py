"""Tool definitions (function and MCP) and tool choice, shared by sessions and responses."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag, model_validator

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


class FunctionTool(WireModel):
    """A function the model may call; ``parameters`` is a JSON Schema."""

    type: Literal["function"] = "function"
    name: str
    description: Omittable[str] = None
    parameters: Omittable[dict[str, Any]] = None


class McpToolFilter(WireModel):
    """Selects MCP tools by name and/or read-only annotation."""

    tool_names: Omittable[list[str]] = None
    read_only: Omittable[bool] = None


class McpApprovalFilter(WireModel):
    """Which MCP tools always / never need approval."""

    always: Omittable[McpToolFilter] = None
    never: Omittable[McpToolFilter] = None


McpAllowedTools = Annotated[
    Annotated[list[str], Tag("array")] | Annotated[McpToolFilter, Tag("object")],
    Discriminator(json_kind),
]
McpRequireApproval = Annotated[
    Annotated[Literal["always", "never"], Tag("string")] | Annotated[McpApprovalFilter, Tag("object")],
    Discriminator(json_kind),
]


class McpTool(WireModel):
    """A remote MCP server (or connector) whose tools the model may call."""

    type: Literal["mcp"] = "mcp"
    server_label: str
    server_url: Omittable[str] = None
    connector_id: Omittable[McpConnectorId] = None
    authorization: Omittable[str] = None
    headers: Omittable[dict[str, str]] = None
    allowed_tools: Omittable[McpAllowedTools] = None
    require_approval: Omittable[McpRequireApproval] = None
    server_description: Omittable[str] = None
    tunnel_id: Omittable[str] = None
    defer_loading: Omittable[bool] = None
    allowed_callers: Omittable[list[Literal["direct", "programmatic"]]] = None

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
    name: str


class ToolChoiceMcp(WireModel):
    """Force a call of an MCP server's tool."""

    type: Literal["mcp"] = "mcp"
    server_label: str
    name: Omittable[str] = None


ToolChoice = Annotated[
    Annotated[Literal["auto", "none", "required"], Tag("string")]
    | Annotated[ToolChoiceFunction, Tag("function")]
    | Annotated[ToolChoiceMcp, Tag("mcp")],
    Discriminator(type_or_kind()),
]
