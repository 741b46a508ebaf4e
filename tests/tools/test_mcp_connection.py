"""McpServerConnection against real MCP servers over HTTP on 127.0.0.1 (no protocol mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from tests.support.mcp_server import McpTestServer, running_mcp_server

from palaver.egress import EgressPolicy
from palaver.protocol.tools import McpTool
from palaver.tools.mcp import McpError, McpServerConnection
from palaver.tools.mcp_connection import wait_abandoned

ALL_TOOLS = ["check_availability", "book_table", "get_menu", "get_logo", "fail", "slow"]
TOKEN = "s3cret-token"

#: These tests talk to servers on 127.0.0.1, as a loopback-only Palaver may.
LOOPBACK = EgressPolicy.allow_all()


@pytest.fixture(scope="module")
def restaurant() -> Iterator[McpTestServer]:
    """Streamable HTTP, tools/list in pages of two."""
    with McpTestServer(page_size=2) as server:
        yield server


@pytest.fixture(scope="module")
def guarded() -> Iterator[McpTestServer]:
    """Needs the bearer token and an extra header."""
    with McpTestServer(token=TOKEN, require_headers={"X-Tenant": "palaver"}) as server:
        yield server


def mcp(url: str, **fields: Any) -> McpTool:
    return McpTool(server_label=fields.pop("server_label", "rest"), server_url=url, **fields)


@contextlib.asynccontextmanager
async def connected(config: McpTool, timeout: float = 10.0) -> AsyncIterator[McpServerConnection]:
    conn = await McpServerConnection.open(egress=LOOPBACK, config=config, timeout=timeout)
    try:
        yield conn
    finally:
        await conn.aclose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- listing ----------------------------------------------------------------------------


async def test_lists_every_page(restaurant: McpTestServer) -> None:
    async with connected(mcp(restaurant.url)) as conn:
        assert conn.transport == "streamable_http"
        tools = await conn.list_tools()
    assert [tool.name for tool in tools] == ALL_TOOLS
    check = tools[0]
    assert check.description == "Check whether a table is free on a date."
    assert check.annotations == {"readOnlyHint": True}
    assert check.input_schema["properties"]["party_size"]["type"] == "integer"
    assert set(check.input_schema["required"]) == {"date", "party_size"}


async def test_allowed_tools_by_name(restaurant: McpTestServer) -> None:
    async with connected(mcp(restaurant.url, allowed_tools=["book_table", "fail", "absent"])) as conn:
        assert [tool.name for tool in await conn.list_tools()] == ["book_table", "fail"]
        assert conn.is_allowed("fail") and not conn.is_allowed("slow")


async def test_allowed_tools_read_only(restaurant: McpTestServer) -> None:
    config = mcp(restaurant.url, allowed_tools={"read_only": True})
    async with connected(config) as conn:
        assert [tool.name for tool in await conn.list_tools()] == ["check_availability", "get_menu"]
    config = mcp(restaurant.url, allowed_tools={"tool_names": ["get_menu", "book_table"], "read_only": True})
    async with connected(config) as conn:
        assert [tool.name for tool in await conn.list_tools()] == ["get_menu"]


# --- calls ------------------------------------------------------------------------------


async def test_call_returns_text(restaurant: McpTestServer) -> None:
    async with connected(mcp(restaurant.url)) as conn:
        text = await conn.call_tool("check_availability", {"date": "2025-12-24", "party_size": 4}, timeout=10)
        assert text == "A table for 4 is available on 2025-12-24 at 19:00."
        # Arguments may also come as the model's JSON text.
        args = json.dumps({"date": "2025-12-31", "time": "20:00", "party_size": 2, "name": "Ada"})
        booked = await conn.call_tool("book_table", args, timeout=10)
        assert booked == "Booked a table for 2 on 2025-12-31 at 20:00 under the name Ada."


async def test_structured_and_non_text_results(restaurant: McpTestServer) -> None:
    async with connected(mcp(restaurant.url)) as conn:
        menu = await conn.call_tool("get_menu", {}, timeout=10)
        assert json.loads(menu) == {"starter": "soup", "main": "risotto"}
        logo = await conn.call_tool("get_logo", None, timeout=10)
        assert logo == "Our logo:\n[image: image/png, 70 bytes]"


async def test_is_error_is_a_tool_execution_error(restaurant: McpTestServer) -> None:
    async with connected(mcp(restaurant.url)) as conn:
        with pytest.raises(McpError) as caught:
            await conn.call_tool("fail", {"message": "kitchen on fire"}, timeout=10)
        assert caught.value.kind == "tool_execution_error"
        assert "kitchen on fire" in caught.value.message
        # The connection is still fine afterwards.
        assert await conn.call_tool("slow", {"seconds": 0}, timeout=10) == "slept 0.0 s"


async def test_bad_arguments(restaurant: McpTestServer) -> None:
    async with connected(mcp(restaurant.url)) as conn:
        with pytest.raises(McpError) as caught:
            await conn.call_tool("check_availability", "{not json", timeout=10)
        assert (caught.value.kind, caught.value.code) == ("protocol_error", -32602)
        # Arguments the tool rejects: the server reports a failed execution.
        with pytest.raises(McpError) as caught:
            await conn.call_tool("check_availability", {"date": "today"}, timeout=10)
        assert caught.value.kind == "tool_execution_error"


async def test_slow_tool_times_out_within_the_timeout(restaurant: McpTestServer) -> None:
    async with connected(mcp(restaurant.url)) as conn:
        started = time.monotonic()
        with pytest.raises(McpError) as caught:
            await conn.call_tool("slow", {"seconds": 60}, timeout=0.5)
        assert time.monotonic() - started < 3.0
        assert caught.value.kind == "http_error" and caught.value.timed_out
        assert caught.value.to_item_error().model_dump()["code"] == 504
        # The abandoned call does not poison the connection.
        assert await conn.call_tool("slow", {"seconds": 0.01}, timeout=10) == "slept 0.01 s"


async def test_caller_cancellation_is_prompt(restaurant: McpTestServer) -> None:
    async with connected(mcp(restaurant.url)) as conn:
        call = asyncio.create_task(conn.call_tool("slow", {"seconds": 60}, timeout=60))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert time.monotonic() - started < 1.0
        assert await conn.call_tool("slow", {"seconds": 0}, timeout=10) == "slept 0.0 s"


async def test_concurrent_calls_share_a_connection(restaurant: McpTestServer) -> None:
    async with connected(mcp(restaurant.url)) as conn:
        started = time.monotonic()
        outputs = await asyncio.gather(
            *(conn.call_tool("slow", {"seconds": 0.5}, timeout=10) for _ in range(4))
        )
        assert outputs == ["slept 0.5 s"] * 4
        assert time.monotonic() - started < 1.9  # not one after the other


async def test_open_in_one_task_call_and_close_from_others(restaurant: McpTestServer) -> None:
    opener = asyncio.create_task(
        McpServerConnection.open(egress=LOOPBACK, config=mcp(restaurant.url), timeout=10)
    )
    conn = await opener  # the task that opened the connection has finished
    calls = [
        asyncio.create_task(conn.call_tool("check_availability", {"date": d, "party_size": 2}, timeout=10))
        for d in ("mon", "tue")
    ]
    assert [await call for call in calls] == [
        "A table for 2 is available on mon at 19:00.",
        "A table for 2 is available on tue at 19:00.",
    ]
    slow = asyncio.create_task(conn.call_tool("slow", {"seconds": 60}, timeout=60))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await asyncio.create_task(conn.aclose())
    assert time.monotonic() - started < 5.0
    with pytest.raises(McpError) as caught:
        await slow  # a call in flight when the connection closed fails cleanly
    assert caught.value.kind == "http_error"
    assert not conn.alive
    with pytest.raises(McpError, match="connection closed"):
        await conn.call_tool("check_availability", {"date": "wed", "party_size": 2}, timeout=10)


async def test_tool_outside_allowed_tools_is_refused_without_contacting_the_server() -> None:
    server = McpTestServer().start()
    try:
        async with connected(mcp(server.url, allowed_tools=["check_availability"])) as conn:
            server.kill()  # any request would now fail with an http_error
            with pytest.raises(McpError) as caught:
                await conn.call_tool("book_table", {}, timeout=5)
            assert (caught.value.kind, caught.value.code) == ("protocol_error", -32602)
            assert "allowed_tools" in caught.value.message
    finally:
        server.stop()


# --- needs_approval ---------------------------------------------------------------------


async def test_needs_approval_uses_the_listed_annotations(restaurant: McpTestServer) -> None:
    config = mcp(restaurant.url, require_approval={"never": {"read_only": True}})
    async with connected(config) as conn:
        assert conn.needs_approval("check_availability")  # not listed yet: not known to be read-only
        await conn.list_tools()
        assert not conn.needs_approval("check_availability")
        assert not conn.needs_approval("get_menu")
        assert conn.needs_approval("book_table")
    async with connected(mcp(restaurant.url)) as conn:
        await conn.list_tools()
        assert all(conn.needs_approval(name) for name in ALL_TOOLS)  # default: always
    async with connected(mcp(restaurant.url, require_approval="never")) as conn:
        assert not conn.needs_approval("book_table")


# --- authentication and headers ---------------------------------------------------------


async def test_bearer_token_and_headers_are_sent(guarded: McpTestServer) -> None:
    config = mcp(guarded.url, authorization=TOKEN, headers={"X-Tenant": "palaver"})
    async with connected(config) as conn:
        assert len(await conn.list_tools()) == len(ALL_TOOLS)
        assert await conn.call_tool("slow", {"seconds": 0}, timeout=10) == "slept 0.0 s"


async def test_wrong_token_is_http_401(guarded: McpTestServer) -> None:
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(
            egress=LOOPBACK,
            config=mcp(guarded.url, authorization="wrong", headers={"X-Tenant": "palaver"}),
            timeout=10,
        )
    assert (caught.value.kind, caught.value.code) == ("http_error", 401)
    assert "401 Unauthorized" in caught.value.message
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(
            egress=LOOPBACK, config=mcp(guarded.url, headers={"X-Tenant": "palaver"}), timeout=10
        )
    assert (caught.value.kind, caught.value.code) == ("http_error", 401)


async def test_missing_header_is_http_403(guarded: McpTestServer) -> None:
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(
            egress=LOOPBACK, config=mcp(guarded.url, authorization=TOKEN), timeout=10
        )
    assert (caught.value.kind, caught.value.code) == ("http_error", 403)


# --- unreachable, silent and dying servers ----------------------------------------------


async def test_server_down_at_open() -> None:
    started = time.monotonic()
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(
            egress=LOOPBACK, config=mcp(f"http://127.0.0.1:{closed_port()}/mcp"), timeout=5
        )
    assert time.monotonic() - started < 5.0
    assert (caught.value.kind, caught.value.code) == ("http_error", None)
    assert caught.value.to_item_error().model_dump()["code"] == 502


async def test_silent_server_times_out_at_open() -> None:
    with socket.socket() as silent:  # accepts TCP connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/mcp"
        started = time.monotonic()
        with pytest.raises(McpError) as caught:
            await McpServerConnection.open(egress=LOOPBACK, config=mcp(url), timeout=0.5)
        assert time.monotonic() - started < 1.5
        assert caught.value.kind == "http_error" and caught.value.timed_out
        assert await wait_abandoned(5.0)


async def test_wrong_path_is_http_404(restaurant: McpTestServer) -> None:
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(
            egress=LOOPBACK, config=mcp(restaurant.base_url + "/nowhere"), timeout=10
        )
    assert (caught.value.kind, caught.value.code) == ("http_error", 404)


async def test_connectors_are_refused() -> None:
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(
            egress=LOOPBACK, config=McpTool(server_label="g", connector_id="connector_gmail"), timeout=1
        )
    assert caught.value.kind == "protocol_error"


@pytest.mark.parametrize("sse", [False, True], ids=["streamable_http", "sse"])
async def test_server_killed_between_calls(sse: bool) -> None:
    server = McpTestServer(sse=sse).start()
    try:
        async with connected(mcp(server.url)) as conn:
            assert await conn.call_tool("slow", {"seconds": 0}, timeout=10) == "slept 0.0 s"
            server.kill()
            for _ in range(2):  # the next call fails, and so does the one after
                started = time.monotonic()
                with pytest.raises(McpError) as caught:
                    await conn.call_tool("slow", {"seconds": 0}, timeout=10)
                assert time.monotonic() - started < 3.0
                assert caught.value.kind == "http_error"
            assert not conn.alive
    finally:
        server.stop()


@pytest.mark.parametrize("sse", [False, True], ids=["streamable_http", "sse"])
async def test_server_killed_during_a_call(sse: bool) -> None:
    server = McpTestServer(sse=sse).start()
    try:
        async with connected(mcp(server.url)) as conn:
            call = asyncio.create_task(conn.call_tool("slow", {"seconds": 60}, timeout=30))
            await asyncio.sleep(0.5)
            server.kill()
            started = time.monotonic()
            with pytest.raises(McpError) as caught:
                await call
            assert time.monotonic() - started < 5.0
            assert caught.value.kind == "http_error"
    finally:
        server.stop()


# --- the HTTP+SSE transport -------------------------------------------------------------


async def test_sse_url_goes_straight_to_sse() -> None:
    with running_mcp_server(sse=True) as url:
        assert url.endswith("/sse")
        async with connected(mcp(url)) as conn:
            assert conn.transport == "sse"
            assert [tool.name for tool in await conn.list_tools()] == ALL_TOOLS
            assert await conn.call_tool(
                "check_availability", {"date": "fri", "party_size": 9}, timeout=10
            ) == ("No table for 9 on fri.")


async def test_falls_back_to_sse_when_streamable_http_is_refused() -> None:
    with running_mcp_server(sse=True, path="/events") as url:  # POST /events → 405
        async with connected(mcp(url)) as conn:
            assert conn.transport == "sse"
            assert (
                await conn.call_tool("get_menu", {}, timeout=10) == '{"starter": "soup", "main": "risotto"}'
            )
            with pytest.raises(McpError) as caught:
                await conn.call_tool("slow", {"seconds": 60}, timeout=0.5)
            assert caught.value.timed_out


async def test_sse_with_token() -> None:
    with running_mcp_server(sse=True, token=TOKEN) as url:
        async with connected(mcp(url, authorization=TOKEN)) as conn:
            assert await conn.call_tool("slow", {"seconds": 0}, timeout=10) == "slept 0.0 s"
        with pytest.raises(McpError) as caught:
            await McpServerConnection.open(
                egress=LOOPBACK, config=mcp(url, authorization="wrong"), timeout=10
            )
        assert (caught.value.kind, caught.value.code) == ("http_error", 401)
