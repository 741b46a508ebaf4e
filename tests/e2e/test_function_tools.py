"""Function calling details: tool_choice reaches the brain, several calls in one response."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.realtime_client import collect_until, connect, of_type

pytestmark = pytest.mark.e2e


def tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": f"The {name} tool.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }


SESSION = {
    "output_modalities": ["text"],
    "audio": {"input": {"turn_detection": None}},
    "tools": [tool("lookup"), tool("weather")],
}


async def ask(conn: Any, **response: Any) -> list[Any]:
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}
    )
    await conn.response.create(response=response or None)
    return await collect_until(conn, "response.done")


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "weather"}, {"type": "function", "function": {"name": "weather"}}),
    ],
)
async def test_tool_choice_reaches_the_brain(palaver_server, llm, choice: Any, sent: Any) -> None:
    llm.push_text("ok")
    async with connect(palaver_server, **SESSION, tool_choice=choice) as conn:
        await ask(conn)
    assert llm.requests[-1]["tool_choice"] == sent
    assert [t["function"]["name"] for t in llm.requests[-1]["tools"]] == ["lookup", "weather"]


async def test_per_response_tools_override_the_session(palaver_server, llm) -> None:
    llm.push_text("ok")
    async with connect(palaver_server, **SESSION) as conn:
        await ask(conn, tools=[tool("only_this")], tool_choice="required")
    assert [t["function"]["name"] for t in llm.requests[-1]["tools"]] == ["only_this"]
    assert llm.requests[-1]["tool_choice"] == "required"


async def test_several_calls_in_one_response(palaver_server, llm) -> None:
    llm.push_tool_calls(
        [("lookup", json.dumps({"q": "order 42"})), ("weather", json.dumps({"q": "Paris"}))],
        text="Checking both.",
    )
    async with connect(palaver_server, **SESSION) as conn:
        events = await ask(conn)
    output = events[-1].response.output
    assert [o.type for o in output] == ["message", "function_call", "function_call"]
    calls = output[1:]
    assert [c.name for c in calls] == ["lookup", "weather"]
    assert len({c.call_id for c in calls}) == 2 and all(c.status == "completed" for c in calls)
    done = of_type(events, "response.function_call_arguments.done")
    assert [json.loads(d.arguments)["q"] for d in done] == ["order 42", "Paris"]
    assert [d.call_id for d in done] == [c.call_id for c in calls]
