"""Operator policies on tool calls hold whatever the model says (stock SDK, scripted brain)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.realtime_client import collect_until, connect, of_type
from tests.support.server import PalaverServer, running_server

pytestmark = pytest.mark.e2e

POLICY = """
[[tool]]
name = "refund"
[tool.arguments.amount]
required = true
max = 10
"""

REFUND = {
    "type": "function",
    "name": "refund",
    "description": "Refund the customer.",
    "parameters": {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]},
}
SESSION = {"output_modalities": ["text"], "tools": [REFUND], "audio": {"input": {"turn_detection": None}}}


@pytest.fixture(scope="module")
def policed_server(scripted_llm, tmp_path_factory) -> Iterator[PalaverServer]:
    path = Path(tmp_path_factory.mktemp("policy")) / "policy.toml"
    path.write_text(POLICY)
    env = {
        "PALAVER_TOOL_POLICY": str(path),
        "PALAVER_LLM_BASE_URL": scripted_llm.base_url,
        "PALAVER_LLM_MODEL": "scripted",
        "PALAVER_API_KEY": None,
    }
    with running_server(env) as server:
        yield server


async def ask(conn, text: str) -> list:
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await conn.response.create()
    return await collect_until(conn, "response.done")


async def test_a_capped_refund_is_refused_and_the_model_explains(policed_server, llm) -> None:
    llm.push_tool_call("refund", json.dumps({"amount": 50}))
    llm.push_text("I can refund at most 10 euros.")
    llm.push_tool_call("refund", json.dumps({"amount": 5}))
    async with connect(policed_server, **SESSION) as conn:
        events = await ask(conn, "Refund me fifty euros.")
        response = events[-1].response
        assert response.status == "completed"
        call, answer = response.output
        assert call.type == "function_call" and call.status == "incomplete"  # no client may run it
        assert answer.type == "message" and answer.content[0].text == "I can refund at most 10 euros."
        # The refusal reached the model in place of a result, and is in the conversation.
        tool_msg = [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"][-1]
        refusal = json.loads(tool_msg["content"])
        assert refusal["error"] == "policy_violation" and refusal["reason"] == "argument_out_of_bounds"
        assert "10" in refusal["message"] and tool_msg["tool_call_id"] == call.call_id
        outputs = [
            e.item
            for e in of_type(events, "conversation.item.added")
            if e.item.type == "function_call_output"
        ]
        assert len(outputs) == 1 and outputs[0].call_id == call.call_id

        requests_before = len(llm.requests)
        events = await ask(conn, "Then refund five.")
        (call,) = events[-1].response.output
        assert call.type == "function_call" and call.status == "completed"
        assert json.loads(call.arguments) == {"amount": 5}
        assert len(llm.requests) == requests_before + 1  # handed to the client: no extra round
        assert not [
            e for e in events if e.type == "conversation.item.added" and e.item.type == "function_call_output"
        ]
