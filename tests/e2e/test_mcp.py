"""Remote MCP servers through a session, with the stock SDK and a real MCP server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.realtime_client import collect_until, connect, of_type, recv
from tests.support.mcp_server import EverythingServer, McpTestServer, require_everything_server

pytestmark = pytest.mark.e2e

AVAILABILITY = "A table for 2 is available on 2026-12-24 at 19:00."


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with McpTestServer() as server:
        yield server.url


def mcp_tool(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "booking", "server_url": url, "require_approval": "never", **extra}


async def open_session(conn: Any, tools: list[dict[str, Any]]) -> list[Any]:
    """session.update with the tools; returns the events up to the last mcp_list_tools item done."""
    await conn.session.update(
        session={
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {"input": {"turn_detection": None}},
            "tools": tools,
        }
    )
    servers = sum(1 for t in tools if t["type"] == "mcp")
    events: list[Any] = []
    async with asyncio.timeout(20):
        while len([e for e in events if e.type == "conversation.item.done"]) < servers:
            events.append(await conn.recv())
    return events


async def ask(conn: Any, text: str, **response: Any) -> list[Any]:
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await conn.response.create(response=response or None)
    return await collect_until(conn, "response.done")


async def test_tools_are_listed_then_called_and_the_model_speaks_the_result(
    palaver_server, llm, mcp_url
) -> None:
    async with connect(palaver_server) as conn:
        events = await open_session(
            conn, [mcp_tool(mcp_url, allowed_tools=["check_availability", "book_table"])]
        )
        types = [e.type for e in events]
        assert types[:4] == [
            "session.updated",
            "conversation.item.added",
            "mcp_list_tools.in_progress",
            "mcp_list_tools.completed",
        ]
        listed = events[-1].item
        assert listed.type == "mcp_list_tools" and listed.server_label == "booking"
        assert sorted(t.name for t in listed.tools) == ["book_table", "check_availability"]

        llm.push_tool_call(
            "mcp__booking__check_availability", json.dumps({"date": "2026-12-24", "party_size": 2})
        )
        llm.push_text("Good news: there is a table at seven.")
        events = await ask(conn, "Is there a table for two on Christmas Eve?")

    # The brain saw the MCP tools as functions.
    offered = sorted(t["function"]["name"] for t in llm.requests[-2]["tools"])
    assert offered == ["mcp__booking__book_table", "mcp__booking__check_availability"]
    types = [e.type for e in events]
    order = [
        "response.output_item.added",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.output_item.done",
    ]
    positions = [types.index(t) for t in order]
    assert positions == sorted(positions)
    response = events[-1].response
    assert response.status == "completed"
    call, answer = response.output
    assert call.type == "mcp_call" and call.name == "check_availability" and call.server_label == "booking"
    assert call.output == AVAILABILITY and call.error is None
    assert answer.content[0].text == "Good news: there is a table at seven."
    # The same response went on with the tool's output in front of the brain.
    tool_msg = [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"][-1]
    assert tool_msg["content"] == AVAILABILITY
    assert all(e.response_id == response.id for e in events if e.type == "response.mcp_call_arguments.done")


@pytest.mark.parametrize("approve", [True, False])
async def test_approval_request_then_response(palaver_server, llm, mcp_url, approve: bool) -> None:
    args = {"date": "2026-12-24", "time": "19:00", "party_size": 2, "name": "Ada"}
    async with connect(palaver_server) as conn:
        await open_session(conn, [mcp_tool(mcp_url, require_approval="always")])
        llm.push_tool_call("mcp__booking__book_table", json.dumps(args))
        llm.push_text("Booked." if approve else "Alright, I did not book it.")
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Book it."}]}
        )
        await conn.response.create()
        first = await collect_until(conn, "conversation.item.done")
        while first[-1].item.type != "mcp_approval_request":
            first += await collect_until(conn, "conversation.item.done")
        request = first[-1].item
        assert request.name == "book_table" and json.loads(request.arguments) == args
        assert not of_type(first, "response.done")  # the response waits for the answer
        await conn.conversation.item.create(
            previous_item_id=request.id,
            item={
                "type": "mcp_approval_response",
                "approval_request_id": request.id,
                "approve": approve,
                **({} if approve else {"reason": "I changed my mind"}),
            },
        )
        rest = await collect_until(conn, "response.done")
    response = rest[-1].response
    assert response.status == "completed"
    calls = [o for o in response.output if o.type == "mcp_call"]
    if approve:
        assert len(calls) == 1 and calls[0].approval_request_id == request.id
        assert calls[0].output.startswith("Booked a table for 2")
        assert of_type(rest, "response.mcp_call.completed")
    else:
        assert not calls and not of_type(rest, "response.mcp_call.in_progress")
        denial = [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"][-1]
        assert json.loads(denial["content"]) == {"error": "denied by the user", "reason": "I changed my mind"}
    assert response.output[-1].content[0].text == ("Booked." if approve else "Alright, I did not book it.")


async def test_server_down_at_start_fails_the_listing_not_the_session(palaver_server, llm) -> None:
    async with connect(palaver_server) as conn:
        events = await open_session(conn, [mcp_tool("http://127.0.0.1:9/mcp")])
        assert "mcp_list_tools.failed" in [e.type for e in events]
        assert events[-1].item.tools == []
        llm.push_text("Hello.")
        events = await ask(conn, "hi")
        assert events[-1].response.status == "completed"
        assert "tools" not in llm.requests[-1] or not llm.requests[-1]["tools"]


async def test_failures_mid_call_become_failed_calls_and_the_model_goes_on(palaver_server, llm) -> None:
    with McpTestServer() as server:
        async with connect(palaver_server) as conn:
            await open_session(conn, [mcp_tool(server.url)])
            # A tool error, and arguments that are not JSON.
            llm.push_tool_call("mcp__booking__fail", json.dumps({"message": "kitchen on fire"}))
            llm.push_text("Sorry, that did not work.")
            events = await ask(conn, "try it")
            call = events[-1].response.output[0]
            assert call.type == "mcp_call" and call.error.type == "tool_execution_error"
            assert "kitchen on fire" in call.error.message
            assert of_type(events, "response.mcp_call.failed")
            llm.push_tool_call("mcp__booking__check_availability", "{not json")
            llm.push_text("Let me try that again later.")
            events = await ask(conn, "and now?")
            call = events[-1].response.output[0]
            assert call.error is not None and events[-1].response.status == "completed"
            # The server dies: the next call fails cleanly, and the session still answers.
            server.kill()
            llm.push_tool_call("mcp__booking__check_availability", json.dumps({"date": "x", "party_size": 1}))
            llm.push_text("The booking system is down.")
            events = await ask(conn, "one more")
            call = events[-1].response.output[0]
            assert call.error is not None and call.error.type in ("http_error", "protocol_error")
            assert events[-1].response.output[-1].content[0].text == "The booking system is down."
            llm.push_text("Still here.")
            events = await ask(conn, "hello?")
            assert events[-1].response.status == "completed"


async def test_retrieve_an_mcp_list_tools_item(palaver_server, llm, mcp_url) -> None:
    async with connect(palaver_server) as conn:
        events = await open_session(conn, [mcp_tool(mcp_url)])
        await conn.conversation.item.retrieve(item_id=events[-1].item.id)
        retrieved = await recv(conn)
        assert retrieved.type == "conversation.item.retrieved" and retrieved.item.type == "mcp_list_tools"
        assert len(retrieved.item.tools) >= 5


async def test_the_npm_reference_server_through_a_spoken_session(palaver_server, llm) -> None:
    require_everything_server()
    with EverythingServer() as server:
        async with connect(palaver_server) as conn:
            await conn.session.update(
                session={
                    "type": "realtime",
                    "output_modalities": ["audio"],
                    "audio": {"input": {"turn_detection": None}},
                    "tools": [
                        {
                            "type": "mcp",
                            "server_label": "everything",
                            "server_url": server.url,
                            "allowed_tools": ["echo", "get-sum"],
                            "require_approval": "never",
                        }
                    ],
                }
            )
            events = await collect_until(conn, "mcp_list_tools.completed")
            listed = (await collect_until(conn, "conversation.item.done"))[-1].item
            assert sorted(t.name for t in listed.tools) == ["echo", "get-sum"]
            llm.push_tool_call("mcp__everything__get-sum", json.dumps({"a": 2, "b": 40}))
            llm.push_text("Two plus forty is forty two.")
            events = await ask(conn, "What is two plus forty?")
    response = events[-1].response
    call, answer = response.output
    assert call.type == "mcp_call" and "42" in (call.output or "")
    assert answer.content[0].type == "output_audio"
    assert answer.content[0].transcript == "Two plus forty is forty two."
    assert of_type(events, "response.output_audio.delta")  # spoken
    assert [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"][-1]["content"] == call.output


async def test_a_server_dying_during_a_call_fails_that_call_promptly(palaver_server, llm) -> None:
    with McpTestServer() as server:
        async with connect(palaver_server) as conn:
            await open_session(conn, [mcp_tool(server.url)])
            llm.push_tool_call("mcp__booking__slow", json.dumps({"seconds": 20}))
            llm.push_text("The booking system went away.")
            await conn.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}
            )
            await conn.response.create()
            await collect_until(conn, "response.mcp_call.in_progress")
            server.kill()  # mid-call
            events = await collect_until(conn, "response.done", timeout=15)
    assert of_type(events, "response.mcp_call.failed")
    call = events[-1].response.output[0]
    assert call.error is not None and call.error.type == "http_error"
    assert events[-1].response.output[-1].content[0].text == "The booking system went away."
