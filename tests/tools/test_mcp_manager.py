"""McpManager: a session's pool of MCP servers, against real servers on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from openai.types.realtime import RealtimeFunctionTool, RealtimeMcpListTools
from tests.support.mcp_server import McpTestServer

from palaver.egress import EgressPolicy
from palaver.protocol.tools import FunctionTool, McpTool
from palaver.tools.mcp import McpError, McpManager

RESTAURANT_TOOLS = ["check_availability", "book_table", "get_menu", "get_logo", "fail", "slow"]

#: These tests talk to servers on 127.0.0.1, as a loopback-only Palaver may.
LOOPBACK = EgressPolicy.allow_all()


@pytest.fixture(scope="module")
def restaurant() -> Iterator[McpTestServer]:
    with McpTestServer() as server:
        yield server


@pytest.fixture(scope="module")
def bistro() -> Iterator[McpTestServer]:
    with McpTestServer(sse=True) as server:
        yield server


@pytest.fixture
async def manager() -> AsyncIterator[McpManager]:
    manager = McpManager(egress=LOOPBACK, open_timeout=10)
    try:
        yield manager
    finally:
        await manager.aclose()


def mcp(label: str, url: str, **fields: Any) -> McpTool:
    return McpTool(server_label=label, server_url=url, **fields)


def down_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"


async def test_sync_one_down_server_does_not_spoil_the_others(
    manager: McpManager, restaurant: McpTestServer, bistro: McpTestServer
) -> None:
    weather = FunctionTool(name="get_weather")  # function tools are not the manager's business
    tools = [mcp("rest", restaurant.url), weather, mcp("down", down_url()), mcp("bistro", bistro.url)]
    started = time.monotonic()
    results = await manager.sync(tools, timeout=5)
    assert time.monotonic() - started < 6
    assert [r.server_label for r in results] == ["rest", "down", "bistro"]
    rest, down, bistro_result = results
    assert rest.ok and [t.name for t in rest.tools or []] == RESTAURANT_TOOLS
    assert bistro_result.ok and len(bistro_result.tools or []) == len(RESTAURANT_TOOLS)
    assert down.tools is None and down.error is not None
    assert down.error.to_item_error().model_dump() == {
        "type": "http_error",
        "code": 502,
        "message": down.error.message,
    }
    # Items for the conversation validate against the OpenAI SDK's types.
    RealtimeMcpListTools.model_validate(rest.to_item("item_1").to_dict())
    RealtimeMcpListTools.model_validate(down.to_item("item_2").to_dict())
    assert manager.server_labels == ["rest", "down", "bistro"]
    assert [label for label, _ in manager.tools_for_llm()] == ["rest"] * 6 + ["bistro"] * 6
    assert await manager.call("bistro", "slow", {"seconds": 0}, timeout=10) == "slept 0.0 s"


async def test_function_names_round_trip(manager: McpManager, restaurant: McpTestServer) -> None:
    await manager.sync(
        [mcp("rest", restaurant.url, allowed_tools=["check_availability"]), mcp("my rest.v2", restaurant.url)]
    )
    functions = manager.function_tools()
    names = [f.name for f in functions]
    assert names[0] == "mcp__rest__check_availability"
    assert len(names) == 1 + len(RESTAURANT_TOOLS) and len(set(names)) == len(names)
    for function in functions:
        RealtimeFunctionTool.model_validate(function.to_dict())
        label, tool = manager.resolve(function.name) or ("", "")
        assert manager.function_name(label, tool) == function.name
    label, tool = manager.resolve(names[1]) or ("", "")
    assert (label, tool) == ("my rest.v2", "check_availability")
    assert names[1].startswith("mcp__my_rest_v2__check_availability_")
    assert manager.resolve("mcp__rest__book_table") is None  # not allowed, not offered
    assert manager.resolve("get_weather") is None
    described = functions[0]
    assert described.description == "Check whether a table is free on a date."
    assert described.parameters is not None and described.parameters["required"] == ["date", "party_size"]
    output = await manager.call(label, tool, '{"date": "sat", "party_size": 3}', timeout=10)
    assert output == "A table for 3 is available on sat at 19:00."


async def test_resync_keeps_reconfigures_and_closes(
    manager: McpManager, restaurant: McpTestServer, bistro: McpTestServer
) -> None:
    first = await manager.sync([mcp("rest", restaurant.url), mcp("bistro", bistro.url)])
    assert all(r.ok and r.changed for r in first)
    rest_conn, bistro_conn = manager.connection("rest"), manager.connection("bistro")

    again = await manager.sync([mcp("rest", restaurant.url), mcp("bistro", bistro.url)])
    assert [r.changed for r in again] == [False, False]
    assert manager.connection("rest") is rest_conn

    narrowed = await manager.sync([mcp("rest", restaurant.url, allowed_tools={"read_only": True})])
    assert [r.server_label for r in narrowed] == ["rest"]
    assert narrowed[0].changed and [t.name for t in narrowed[0].tools or []] == [
        "check_availability",
        "get_menu",
    ]
    assert manager.connection("rest") is rest_conn  # same endpoint: no reconnect
    assert bistro_conn is not None and not bistro_conn.alive  # removed: closed
    assert manager.connection("bistro") is None
    with pytest.raises(McpError) as caught:
        await manager.call("rest", "book_table", {}, timeout=5)
    assert caught.value.kind == "protocol_error"
    with pytest.raises(McpError) as caught:
        await manager.call("bistro", "slow", {"seconds": 0}, timeout=5)
    assert caught.value.kind == "protocol_error" and "server_label" in caught.value.message

    token_changed = await manager.sync([mcp("rest", restaurant.url, authorization="new-token")])
    assert token_changed[0].ok and manager.connection("rest") is not rest_conn  # new endpoint: reconnected
    assert rest_conn is not None and not rest_conn.alive


async def test_duplicate_labels(manager: McpManager, restaurant: McpTestServer) -> None:
    results = await manager.sync([mcp("rest", restaurant.url), mcp("rest", down_url())])
    assert results[0].ok
    assert results[1].error is not None and results[1].error.kind == "protocol_error"
    assert manager.server_labels == ["rest"]


async def test_needs_approval_through_the_manager(manager: McpManager, restaurant: McpTestServer) -> None:
    await manager.sync(
        [
            mcp("rest", restaurant.url, require_approval={"never": {"read_only": True}}),
            mcp("open", restaurant.url, require_approval="never"),
            mcp("down", down_url(), require_approval="never"),
            mcp("default", restaurant.url),
        ],
        timeout=5,
    )
    assert not manager.needs_approval("rest", "get_menu")
    assert manager.needs_approval("rest", "book_table")
    assert not manager.needs_approval("open", "book_table")
    assert not manager.needs_approval("down", "book_table")  # configured, though not connected
    assert manager.needs_approval("default", "get_menu")
    assert manager.needs_approval("unknown", "anything")


async def test_server_killed_mid_session_then_back(manager: McpManager) -> None:
    server = McpTestServer().start()
    port = server.port
    try:
        await manager.sync([mcp("rest", server.url)])
        names_before = [f.name for f in manager.function_tools()]
        server.kill()
        started = time.monotonic()
        with pytest.raises(McpError) as caught:
            await manager.call("rest", "slow", {"seconds": 0}, timeout=10)
        assert caught.value.kind == "http_error"
        with pytest.raises(McpError) as caught:  # reconnecting fails fast too
            await manager.call("rest", "slow", {"seconds": 0}, timeout=10)
        assert caught.value.kind == "http_error"
        assert time.monotonic() - started < 5
        assert [f.name for f in manager.function_tools()] == names_before  # still offered
        server.stop()

        server = McpTestServer(port=port or 0).start()  # the server comes back where it was
        assert await manager.call("rest", "slow", {"seconds": 0}, timeout=10) == "slept 0.0 s"
        connection = manager.connection("rest")
        assert connection is not None and connection.alive
        assert [f.name for f in manager.function_tools()] == names_before
    finally:
        server.stop()


async def test_slow_call_through_the_manager(manager: McpManager, restaurant: McpTestServer) -> None:
    await manager.sync([mcp("rest", restaurant.url)])
    started = time.monotonic()
    with pytest.raises(McpError) as caught:
        await manager.call("rest", "slow", {"seconds": 60}, timeout=0.5)
    assert time.monotonic() - started < 3
    assert caught.value.timed_out


async def test_aclose_closes_everything(restaurant: McpTestServer, bistro: McpTestServer) -> None:
    manager = McpManager(egress=LOOPBACK)
    await manager.sync([mcp("rest", restaurant.url), mcp("bistro", bistro.url)])
    connections = [manager.connection("rest"), manager.connection("bistro")]
    await manager.aclose()
    assert all(c is not None and not c.alive for c in connections)
    assert manager.function_tools() == []
    with pytest.raises(McpError):
        await manager.call("rest", "slow", {"seconds": 0}, timeout=1)
