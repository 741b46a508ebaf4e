"""Tools: function and MCP tool calls, and the operator policies on them."""
