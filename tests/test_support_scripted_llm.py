"""The scripted LLM behaves like OpenAI's Chat Completions API for the stock ``openai`` client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionToolParam

from tests.support.scripted_llm import ScriptedLLM, ToolCall

USER: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What's the weather in Paris?"},
]
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
async def client(llm: ScriptedLLM) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0, timeout=10) as c:
        yield c


async def collect(client: AsyncOpenAI, **kwargs: Any) -> list[ChatCompletionChunk]:
    stream = await client.chat.completions.create(model="scripted", messages=USER, stream=True, **kwargs)
    async with stream:
        return [chunk async for chunk in stream]


async def wait_until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_streams_text_in_word_chunks(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    llm.push_text("Hello there. How can I help?")
    chunks = await collect(client)
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert contents == ["Hello", " there.", " How", " can", " I", " help?"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.usage is None for c in chunks)
    assert all(c.object == "chat.completion.chunk" and c.model == "scripted" for c in chunks)
    assert len({c.id for c in chunks}) == 1


async def test_stream_ends_with_usage_when_asked(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    llm.push_text("One two three.")
    chunks = await collect(client, stream_options={"include_usage": True})
    *body, last = chunks
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 3
    assert last.usage.total_tokens == last.usage.prompt_tokens + 3
    assert all(c.usage is None for c in body)
    assert body[-1].choices[0].finish_reason == "stop"


async def test_raw_sse_ends_with_done(llm: ScriptedLLM) -> None:
    import httpx

    llm.push_text("Hi.")
    body = {"model": "scripted", "messages": USER, "stream": True}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{llm.base_url}/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\n") if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["choices"][0]["delta"]["role"] == "assistant"


async def test_non_streaming_text(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    llm.push_text("Hello there.")
    completion = await client.chat.completions.create(model="scripted", messages=USER)
    assert completion.choices[0].message.content == "Hello there."
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 2


async def test_streamed_tool_calls_reassemble(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    llm.push_tool_calls(
        [ToolCall("get_weather", '{"city": "Paris, France"}', "call_1"), ("get_time", {"tz": "Europe/Paris"})]
    )
    chunks = await collect(client, tools=[WEATHER_TOOL])
    calls: dict[int, dict[str, str]] = {}
    heads = []
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            if delta.id is not None:
                heads.append(delta)
                assert delta.type == "function" and delta.function is not None
                assert delta.function.arguments == ""
                calls[delta.index] = {"id": delta.id, "name": delta.function.name or "", "arguments": ""}
            else:
                assert delta.function is not None and delta.function.name is None
                calls[delta.index]["arguments"] += delta.function.arguments or ""
    assert len(heads) == 2
    assert calls[0] == {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris, France"}'}
    assert calls[1]["name"] == "get_time" and json.loads(calls[1]["arguments"]) == {"tz": "Europe/Paris"}
    assert calls[1]["id"].startswith("call_") and calls[1]["id"] != "call_1"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    fragments = sum(1 for c in chunks for d in c.choices[0].delta.tool_calls or [] if d.id is None)
    assert fragments > 2  # arguments arrive in pieces


async def test_text_then_tool_call_in_one_turn(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    llm.push_tool_calls([("get_weather", {"city": "Oslo"})], text="Let me check.")
    chunks = await collect(client)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Let me check."
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_non_streaming_tool_call(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    llm.push_tool_call("get_weather", {"city": "Paris"}, call_id="call_abc")
    completion = await client.chat.completions.create(model="scripted", messages=USER, tools=[WEATHER_TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.id == "call_abc" and call.type == "function"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}


@pytest.mark.parametrize("stream", [False, True])
async def test_error_status(llm: ScriptedLLM, client: AsyncOpenAI, stream: bool) -> None:
    llm.push_error(status=503, message="model overloaded", times=2)
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model="scripted", messages=USER, stream=stream)
        assert caught.value.status_code == 503
        assert "model overloaded" in caught.value.message
    llm.push_error(status=429, message="slow down")
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="scripted", messages=USER)
    # script exhausted: the default echo answers again
    completion = await client.chat.completions.create(model="scripted", messages=USER)
    assert completion.choices[0].message.content == "You said: What's the weather in Paris?."


async def test_default_echo_and_error(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "hi there"}]},
    ]
    stream = await client.chat.completions.create(model="scripted", messages=messages, stream=True)
    async with stream:
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "You said: hi there."
    llm.default = "error"
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="scripted", messages=messages)


async def test_records_requests(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    llm.push_text("a")
    llm.push_text("b")
    await collect(client, tools=[WEATHER_TOOL], temperature=0.5)
    await client.chat.completions.create(model="other", messages=USER)
    first, second = await llm.wait_for_requests(2)
    assert first["stream"] is True and first["temperature"] == 0.5
    assert first["messages"] == USER
    assert first["tools"] == [WEATHER_TOOL]
    assert second["model"] == "other" and "tools" not in second
    assert llm.request_headers[0]["authorization"] == "Bearer sk-test"
    assert llm.pending == 0
    llm.reset()
    assert llm.requests == [] and llm.request_headers == []


async def test_lists_models(client: AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == ["scripted"]


async def test_chunk_delay_paces_the_stream(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    llm.chunk_delay = 0.05
    llm.push_text("one two three four")
    started = time.monotonic()
    await collect(client)
    assert time.monotonic() - started >= 0.2


async def test_hang_until_client_disconnects(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    llm.push_hang()
    stream = await client.chat.completions.create(model="scripted", messages=USER, stream=True)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(aiter(stream)), 0.3)
    await stream.close()
    await wait_until(lambda: llm.disconnects == 1)


async def test_non_streaming_hang_until_client_gives_up(llm: ScriptedLLM) -> None:
    llm.push_hang()
    async with AsyncOpenAI(base_url=llm.base_url, api_key="k", max_retries=0, timeout=0.3) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="scripted", messages=USER)
    await wait_until(lambda: llm.disconnects == 1)


async def test_reset_releases_a_hang(llm: ScriptedLLM, client: AsyncOpenAI) -> None:
    llm.push_hang()
    stream = await client.chat.completions.create(model="scripted", messages=USER, stream=True)
    async with stream:
        llm.reset()
        chunks = await asyncio.wait_for(_drain(stream), 5)
    assert chunks == []
    assert llm.disconnects == 0


async def _drain(stream: openai.AsyncStream[ChatCompletionChunk]) -> list[ChatCompletionChunk]:
    return [chunk async for chunk in stream]


def test_standalone_context_manager() -> None:
    import httpx

    with ScriptedLLM() as scripted:
        response = httpx.get(f"{scripted.base_url}/models")
        assert response.status_code == 200
        port = scripted.port
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
