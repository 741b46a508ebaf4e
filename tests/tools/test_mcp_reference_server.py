"""The MCP client against the npm reference server ``@modelcontextprotocol/server-everything``.

A second, independent implementation (the TypeScript SDK) on both transports. It is
installed into ``.venv/node`` by ``scripts/_venv.sh`` (``npm ci`` of ``package-lock.json``)
and runs offline from there, bound to 127.0.0.1.
"""

from __future__ import annotations

import pytest
from tests.support.mcp_server import EverythingServer, require_everything_server

from palaver.egress import EgressPolicy
from palaver.protocol.tools import McpTool
from palaver.tools.mcp import McpError, McpManager, McpServerConnection

#: These tests talk to servers on 127.0.0.1, as a loopback-only Palaver may.
LOOPBACK = EgressPolicy.allow_all()


@pytest.fixture(autouse=True)
def _reference_server_here() -> None:
    require_everything_server()


@pytest.mark.parametrize("transport", ["streamableHttp", "sse"])
async def test_lists_tools_and_calls_echo(transport: str) -> None:
    with EverythingServer(transport=transport) as server:
        config = McpTool(server_label="everything", server_url=server.url)
        conn = await McpServerConnection.open(egress=LOOPBACK, config=config, timeout=10)
        try:
            assert conn.transport == ("sse" if transport == "sse" else "streamable_http")
            tools = {tool.name: tool for tool in await conn.list_tools()}
            assert {"echo", "get-sum", "get-tiny-image"} <= set(tools)
            assert tools["echo"].input_schema["properties"]["message"]["type"] == "string"
            assert (
                await conn.call_tool("echo", {"message": "hello palaver"}, timeout=10)
                == "Echo: hello palaver"
            )
            assert (
                await conn.call_tool("get-sum", {"a": 2, "b": 40}, timeout=10) == "The sum of 2 and 40 is 42."
            )
            image = await conn.call_tool("get-tiny-image", {}, timeout=10)
            assert "[image: image/png," in image
            with pytest.raises(McpError) as caught:  # arguments the server's schema rejects
                await conn.call_tool("get-sum", {"a": "two"}, timeout=10)
            assert caught.value.kind in ("protocol_error", "tool_execution_error")
        finally:
            await conn.aclose()


async def test_manager_with_allowed_tools() -> None:
    with EverythingServer() as server:
        manager = McpManager(egress=LOOPBACK)
        try:
            (result,) = await manager.sync(
                [McpTool(server_label="everything", server_url=server.url, allowed_tools=["echo"])]
            )
            assert result.ok and [tool.name for tool in result.tools or []] == ["echo"]
            assert [f.name for f in manager.function_tools()] == ["mcp__everything__echo"]
            label, tool = manager.resolve("mcp__everything__echo") or ("", "")
            assert await manager.call(label, tool, '{"message": "hi"}', timeout=10) == "Echo: hi"
        finally:
            await manager.aclose()
