"""Which MCP tools the model may see (``allowed_tools``) and which need approval
(``require_approval``). Pure functions of the ``mcp`` tool config and a tool's listing.

Filter objects (``{"tool_names": [...], "read_only": bool}``) narrow: a tool matches when
every criterion given holds. ``tool_names`` holds when the tool is named in it;
``read_only: true`` holds when the server annotated the tool ``readOnlyHint: true``;
``read_only: false`` (or absent) sets no condition. An empty filter matches every tool.

Approval: ``"always"`` / ``"never"`` apply to every tool. With a filter object, a tool
matching ``always`` needs approval, else one matching ``never`` does not, else it does.
Absent (``null``), approval is required, as OpenAI's default is ("by default, OpenAI will
request your approval before any data is shared with a connector or remote MCP server").
A tool whose listing is unknown is treated as not read-only.
"""

from __future__ import annotations

from collections.abc import Iterable

from palaver.protocol.items import McpToolInfo
from palaver.protocol.tools import McpAllowedTools, McpRequireApproval, McpToolFilter

__all__ = ["filter_tools", "is_read_only", "is_tool_allowed", "needs_approval", "tool_matches"]


def is_read_only(tool: McpToolInfo | None) -> bool:
    """Whether the server annotated the tool ``readOnlyHint: true``."""
    return (
        tool is not None and bool(tool.annotations) and (tool.annotations or {}).get("readOnlyHint") is True
    )


def tool_matches(selector: McpToolFilter, name: str, tool: McpToolInfo | None) -> bool:
    """Whether the tool ``name`` (listed as ``tool``, if known) matches every criterion."""
    if selector.tool_names is not None and name not in selector.tool_names:
        return False
    return not (selector.read_only and not is_read_only(tool))


def is_tool_allowed(allowed: McpAllowedTools | None, name: str, tool: McpToolInfo | None) -> bool:
    """Whether ``allowed_tools`` lets the model see and call the tool ``name``."""
    if allowed is None:
        return True
    if isinstance(allowed, list):
        return name in allowed
    return tool_matches(allowed, name, tool)


def filter_tools(allowed: McpAllowedTools | None, tools: Iterable[McpToolInfo]) -> list[McpToolInfo]:
    """The listed tools ``allowed_tools`` keeps, in the server's order."""
    return [tool for tool in tools if is_tool_allowed(allowed, tool.name, tool)]


def needs_approval(policy: McpRequireApproval | None, name: str, tool: McpToolInfo | None) -> bool:
    """Whether a call of the tool ``name`` must be approved by the client first."""
    if policy is None or policy == "always":
        return True
    if policy == "never":
        return False
    if policy.always is not None and tool_matches(policy.always, name, tool):
        return True
    return not (policy.never is not None and tool_matches(policy.never, name, tool))
