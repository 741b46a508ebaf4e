"""The stock ``openai-agents`` RealtimeRunner against Palaver: a function tool, run by the SDK."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner

from tests.support.speech_script import build

pytestmark = pytest.mark.e2e

ANSWER = "It is sunny and twenty one degrees in Paris."


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return json.dumps({"city": city, "sky": "sunny", "celsius": 21})


async def test_runner_calls_a_function_tool_and_speaks_the_result(palaver_server, llm) -> None:
    llm.push_tool_call("get_weather", json.dumps({"city": "Paris"}))
    llm.push_text(ANSWER)
    agent = RealtimeAgent(name="Weather", instructions="You tell the weather.", tools=[get_weather])
    runner = RealtimeRunner(starting_agent=agent)
    model_config: Any = {
        "url": palaver_server.ws_base_url + "/realtime?model=gpt-realtime",
        "api_key": "test-key",
        # The SDK's session.update names its own default model; it must match the URL's, since
        # a session's model cannot change (as on OpenAI).
        "initial_model_settings": {"model_name": "gpt-realtime"},
    }
    seen: list[str] = []
    errors: list[Any] = []
    tool_outputs: list[str] = []
    audio_bytes = 0
    session = await runner.run(model_config=model_config)
    async with session:
        await session.send_message("What is the weather in Paris?")
        async with asyncio.timeout(30):
            async for event in session:
                seen.append(event.type)
                if event.type == "error":
                    errors.append(event.error)
                elif event.type == "tool_end":
                    tool_outputs.append(str(event.output))
                elif event.type == "audio":
                    audio_bytes += len(event.audio.data)
                elif (
                    event.type == "raw_model_event"
                    and getattr(event.data, "type", None) == "raw_server_event"
                ):
                    pass
                if event.type == "audio_end" and tool_outputs:
                    break
        history = list(session._history)  # the SDK's own view of the conversation

    assert not errors, errors
    assert "tool_start" in seen and "tool_end" in seen
    assert tool_outputs and json.loads(tool_outputs[0])["sky"] == "sunny"
    assert audio_bytes > 24000 * 2 * 0.5  # more than half a second of 24 kHz PCM16

    # The brain got the tool declared, asked for it, then saw its output before answering.
    first, second = llm.requests[-2], llm.requests[-1]
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather"]
    assert first["messages"][0] == {"role": "system", "content": "You tell the weather."}
    tool_msgs = [m for m in second["messages"] if m["role"] == "tool"]
    assert len(tool_msgs) == 1 and json.loads(tool_msgs[0]["content"])["celsius"] == 21
    calls = [m for m in second["messages"] if m.get("tool_calls")]
    assert calls[0]["tool_calls"][0]["id"] == tool_msgs[0]["tool_call_id"]

    # The SDK's history holds the spoken answer.
    assistant_texts = [
        getattr(part, "transcript", None) or getattr(part, "text", None)
        for item in history
        if getattr(item, "role", None) == "assistant"
        for part in getattr(item, "content", [])
    ]
    assert ANSWER in assistant_texts


async def test_runner_with_server_vad_is_interrupted_and_keeps_the_heard_words(palaver_server, llm) -> None:
    long_answer = " ".join(["Here is a long answer that goes on and on."] * 6)
    llm.chunk_delay = 0.05
    llm.push_text(long_answer)
    llm.push_text("Okay, I will stop.")
    first = build([("pause", 400), ("say", "tell me a long story"), ("pause", 900)])
    second = build([("say", "stop please that is enough"), ("pause", 900)], seed=8)
    agent = RealtimeAgent(name="Talker", instructions="You talk.")
    model_config: Any = {
        "url": palaver_server.ws_base_url + "/realtime?model=gpt-realtime",
        "api_key": "test-key",
        "initial_model_settings": {
            "model_name": "gpt-realtime",
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 600, "interrupt_response": True},
        },
    }
    seen: list[str] = []
    errors: list[Any] = []
    session = await RealtimeRunner(starting_agent=agent).run(model_config=model_config)

    async def speak(pcm: bytes) -> None:
        step = 24000 * 2 * 40 // 1000
        for i in range(0, len(pcm), step):
            await session.send_audio(pcm[i : i + step])
            await asyncio.sleep(0.04)

    async with session:
        await speak(first.pcm)
        talking_over: asyncio.Task[None] | None = None
        answers = 0
        async with asyncio.timeout(40):
            async for event in session:
                seen.append(event.type)
                if event.type == "error":
                    errors.append(event.error)
                if event.type == "audio" and talking_over is None:
                    talking_over = asyncio.create_task(speak(second.pcm))
                if event.type == "raw_model_event" and getattr(event.data, "type", "") == "turn_ended":
                    answers += 1
                if answers >= 2:
                    break
        assert talking_over is not None
        await talking_over
        history = list(session._history)

    assert not errors, errors
    assert "audio_interrupted" in seen
    transcripts = [
        getattr(part, "transcript", None) or ""
        for item in history
        if getattr(item, "role", None) == "assistant"
        for part in getattr(item, "content", [])
    ]
    assert "Okay, I will stop." in transcripts
    interrupted = transcripts[0]
    assert interrupted != long_answer and long_answer.startswith(interrupted), interrupted


@function_tool
async def slow_lookup(order: str) -> str:
    """Look an order up in the slow back office."""
    await asyncio.sleep(3)
    return json.dumps({"order": order, "status": "shipped"})


async def test_a_slow_tool_runs_while_the_conversation_goes_on(palaver_server, llm) -> None:
    llm.push_tool_call("slow_lookup", json.dumps({"order": "42"}))
    llm.push_text("While I check: we are open from nine to five.")
    llm.push_text("Your order 42 has shipped.")
    agent = RealtimeAgent(name="Support", instructions="You help.", tools=[slow_lookup])
    model_config: Any = {
        "url": palaver_server.ws_base_url + "/realtime?model=gpt-realtime",
        "api_key": "test-key",
        "initial_model_settings": {"model_name": "gpt-realtime", "modalities": ["text"]},
    }
    errors: list[Any] = []
    tool_ended = False
    first = len(llm.requests)
    session = await RealtimeRunner(starting_agent=agent).run(model_config=model_config)
    async with session:
        await session.send_message("Where is my order 42?")
        sent_second = False
        async with asyncio.timeout(40):
            async for event in session:
                if event.type == "error":
                    errors.append(event.error)
                if event.type == "tool_start" and not sent_second:
                    await asyncio.sleep(0.3)
                    await session.send_message("What are your opening hours?")  # while the tool runs
                    sent_second = True
                if event.type == "tool_end":
                    tool_ended = True
                if tool_ended and len(llm.requests) - first >= 3 and event.type == "agent_end":
                    break
        history = list(session._history)

    assert not errors, errors
    asked_meanwhile, answered_after = llm.requests[first + 1], llm.requests[first + 2]
    # While the call was pending, the brain saw it honestly as pending, then the new question.
    pending = [m for m in asked_meanwhile["messages"] if m["role"] == "tool"]
    assert len(pending) == 1 and json.loads(pending[0]["content"])["status"] == "pending"
    assert asked_meanwhile["messages"][-1] == {"role": "user", "content": "What are your opening hours?"}
    # Once the output arrived, it sits right after its call; the later exchange follows.
    roles = [m["role"] for m in answered_after["messages"]]
    call_at = next(i for i, m in enumerate(answered_after["messages"]) if m.get("tool_calls"))
    assert roles[call_at + 1] == "tool"
    assert json.loads(answered_after["messages"][call_at + 1]["content"])["status"] == "shipped"
    assert roles[call_at + 2 :] == ["user", "assistant"]
    texts = [
        getattr(part, "text", None) or getattr(part, "transcript", None)
        for item in history
        if getattr(item, "role", None) == "assistant"
        for part in getattr(item, "content", [])
    ]
    assert "While I check: we are open from nine to five." in texts
    assert "Your order 42 has shipped." in texts
