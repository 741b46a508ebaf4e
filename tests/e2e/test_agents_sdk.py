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
