"""Function calls get Palaver's own ``call_…`` ids, against ``palaver serve`` with the stock SDK.

The brain (the scripted LLM) numbers its tool calls as some servers and LiveKit's stack do:
``call_0`` every turn, or ``0`` for both calls of one turn. The client still sees distinct
call ids, answers each call with the SDK, and the next request the brain receives pairs every
tool output with the call it answers (found with two weather calls, Paris and Lyon, that were
both answered "sunny in lyon").
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.e2e.realtime_client import collect_until, connect
from tests.support.scripted_llm import ToolCall

pytestmark = pytest.mark.e2e

CALL_ID = re.compile(r"^call_[A-Za-z0-9]{21}$")
WEATHER = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SESSION = {"output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}, "tools": [WEATHER]}


async def say(conn: Any, text: str) -> list[Any]:
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await conn.response.create()
    return await collect_until(conn, "response.done")


def calls_in(events: list[Any]) -> list[Any]:
    return [o for o in events[-1].response.output if o.type == "function_call"]


async def answer(conn: Any, call_id: str, output: str) -> None:
    await conn.conversation.item.create(
        item={"type": "function_call_output", "call_id": call_id, "output": output}
    )


def answered_calls(request: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(call id, city asked, the tool output paired with it by id) in one request to the brain."""
    calls: dict[str, str] = {}
    for message in request["messages"]:
        for call in message.get("tool_calls") or ():
            assert call["id"] not in calls, f"two calls share the id {call['id']}"
            calls[call["id"]] = json.loads(call["function"]["arguments"])["city"]
    tools = [m for m in request["messages"] if m["role"] == "tool"]
    assert len(tools) == len(calls)
    return [(m["tool_call_id"], calls[m["tool_call_id"]], m["content"]) for m in tools]


def city_weather(city: str) -> str:
    return json.dumps({"city": city, "weather": f"sunny in {city.lower()}"})


async def test_a_brain_that_calls_every_tool_call_0_still_gets_distinct_ids_and_right_outputs(
    palaver_server, llm
) -> None:
    llm.push_tool_calls([ToolCall("weather", json.dumps({"city": "Paris"}), "call_0")])
    llm.push_text("Paris is sunny.")
    llm.push_tool_calls([ToolCall("weather", json.dumps({"city": "Lyon"}), "call_0")])
    llm.push_text("Lyon is sunny too.")
    async with connect(palaver_server, **SESSION) as conn:
        [paris] = calls_in(await say(conn, "Weather in Paris?"))
        await answer(conn, paris.call_id, city_weather("Paris"))
        await conn.response.create()
        await collect_until(conn, "response.done")
        [lyon] = calls_in(await say(conn, "And in Lyon?"))
        await answer(conn, lyon.call_id, city_weather("Lyon"))
        await conn.response.create()
        await collect_until(conn, "response.done")
    assert CALL_ID.match(paris.call_id) and CALL_ID.match(lyon.call_id)
    assert paris.call_id != lyon.call_id and "call_0" not in (paris.call_id, lyon.call_id)
    # the brain's last request holds the whole history: each call with its own output
    assert answered_calls(llm.requests[-1]) == [
        (paris.call_id, "Paris", city_weather("Paris")),
        (lyon.call_id, "Lyon", city_weather("Lyon")),
    ]
    assert answered_calls(llm.requests[1]) == [(paris.call_id, "Paris", city_weather("Paris"))]


async def test_two_calls_of_one_turn_both_numbered_0_are_answered_each_with_its_own_output(
    palaver_server, llm
) -> None:
    llm.push_tool_calls(
        [
            ToolCall("weather", json.dumps({"city": "Paris"}), "0"),
            ToolCall("weather", json.dumps({"city": "Lyon"}), "0"),
        ]
    )
    llm.push_text("Both sunny.")
    async with connect(palaver_server, **SESSION) as conn:
        events = await say(conn, "Weather in Paris and Lyon?")
        paris, lyon = calls_in(events)
        assert [json.loads(c.arguments)["city"] for c in (paris, lyon)] == ["Paris", "Lyon"]
        # answered in the other order: the pairing is by id, not by position
        await answer(conn, lyon.call_id, city_weather("Lyon"))
        await answer(conn, paris.call_id, city_weather("Paris"))
        await conn.response.create()
        await collect_until(conn, "response.done")
    assert CALL_ID.match(paris.call_id) and CALL_ID.match(lyon.call_id) and paris.call_id != lyon.call_id
    deltas = {e.call_id for e in events if e.type == "response.function_call_arguments.delta"}
    assert deltas == {paris.call_id, lyon.call_id}
    assert answered_calls(llm.requests[-1]) == [
        (paris.call_id, "Paris", city_weather("Paris")),
        (lyon.call_id, "Lyon", city_weather("Lyon")),
    ]
