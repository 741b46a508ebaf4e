"""Function calls get Palaver's own ``call_…`` ids, whatever ids the brain gives its tool calls;
and the history the brain gets back pairs every output with its own call."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from palaver.backends.base import ChatEvent, ChatFinished, ChatRequest, ToolCallDelta
from palaver.engine.cascade import CascadeEngine
from palaver.engine.context import PENDING_CALL_OUTPUT, build_messages
from palaver.engine.events import (
    EngineRequest,
    FunctionCallArguments,
    FunctionCallEnd,
    FunctionCallStart,
)
from palaver.protocol.items import FunctionCallItem, FunctionCallOutputItem, InputTextContent, MessageItem

CALL_ID = re.compile(r"^call_[A-Za-z0-9]{21}$")


class ScriptedChat:
    """A brain that streams the given deltas, one list per request."""

    name = "scripted"
    accepts_images = False

    def __init__(self, *rounds: list[ToolCallDelta]) -> None:
        self.rounds = list(rounds)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        for delta in self.rounds.pop(0):
            yield delta
        yield ChatFinished(reason="tool_calls", usage=None)


async def calls_of(engine: CascadeEngine) -> list[tuple[str, str, str]]:
    """(call_id, name, arguments) of each call one response made."""
    calls: list[tuple[str, str, str]] = []
    request = EngineRequest(messages=[{"role": "user", "content": "weather?"}], audio=False)
    current: list[Any] | None = None
    async for event in engine.generate(request):
        if isinstance(event, FunctionCallStart):
            assert current is None
            current = [event.call_id, event.name, ""]
        elif isinstance(event, FunctionCallArguments):
            assert current is not None
            current[2] += event.delta
        elif isinstance(event, FunctionCallEnd):
            assert current is not None
            calls.append((current[0], current[1], current[2]))
            current = None
    assert current is None
    return calls


def delta(index: int, call_id: str | None, name: str | None, arguments: str) -> ToolCallDelta:
    return ToolCallDelta(index=index, call_id=call_id, name=name, arguments=arguments)


def engine_for(chat: ScriptedChat) -> CascadeEngine:
    return CascadeEngine(chat=chat, tts=None, executor=ThreadPoolExecutor(1))  # type: ignore[arg-type]


async def test_a_brain_that_reuses_call_0_every_round_gets_a_fresh_id_each_time() -> None:
    paris = [delta(0, "call_0", "weather", '{"city":'), delta(0, None, None, ' "Paris"}')]
    lyon = [delta(0, "call_0", "weather", '{"city": "Lyon"}')]
    engine = engine_for(ScriptedChat(paris, lyon))
    [(first, name1, args1)] = await calls_of(engine)
    [(second, name2, args2)] = await calls_of(engine)
    assert (name1, args1) == ("weather", '{"city": "Paris"}')
    assert (name2, args2) == ("weather", '{"city": "Lyon"}')
    assert CALL_ID.match(first) and CALL_ID.match(second)
    assert first != second


async def test_two_calls_of_one_round_with_the_same_brain_id_are_two_calls() -> None:
    both = [
        delta(0, "0", "weather", '{"city": "Paris"}'),
        delta(1, "0", "weather", '{"city": "Lyon"}'),
    ]
    calls = await calls_of(engine_for(ScriptedChat(both)))
    assert [args for _, _, args in calls] == ['{"city": "Paris"}', '{"city": "Lyon"}']
    ids = [call_id for call_id, _, _ in calls]
    assert all(CALL_ID.match(i) for i in ids) and len(set(ids)) == 2


async def test_a_new_brain_id_at_the_same_index_starts_a_new_call() -> None:
    """Some OpenAI-compatible servers send every call at index 0, told apart by their ids."""
    both = [
        delta(0, "a", "weather", '{"city": "Paris"}'),
        delta(0, "b", "weather", '{"city":'),
        delta(0, "b", None, ' "Lyon"}'),  # the id repeated on a continuation: the same call
    ]
    calls = await calls_of(engine_for(ScriptedChat(both)))
    assert [args for _, _, args in calls] == ['{"city": "Paris"}', '{"city": "Lyon"}']
    assert len({call_id for call_id, _, _ in calls}) == 2


async def test_a_brain_without_ids_still_gets_ids() -> None:
    calls = await calls_of(engine_for(ScriptedChat([delta(0, None, "weather", "{}")])))
    [(call_id, _, _)] = calls
    assert CALL_ID.match(call_id)


# ---------------------------------------------------------------------------- the history


def user(text: str) -> MessageItem:
    return MessageItem(id=f"u-{text}", type="message", role="user", content=[InputTextContent(text=text)])


def call(item_id: str, call_id: str, city: str) -> FunctionCallItem:
    arguments = f'{{"city": "{city}"}}'
    return FunctionCallItem(
        id=item_id, type="function_call", call_id=call_id, name="weather", arguments=arguments
    )


def output(item_id: str, call_id: str, text: str) -> FunctionCallOutputItem:
    return FunctionCallOutputItem(id=item_id, type="function_call_output", call_id=call_id, output=text)


def pairs(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(arguments of the call, the tool message answering it), matched by id as a brain would."""
    calls = {c["id"]: c["function"]["arguments"] for m in messages for c in m.get("tool_calls") or ()}
    answers = [(m["tool_call_id"], m["content"]) for m in messages if m["role"] == "tool"]
    assert len(calls) == len(answers) == len({i for i, _ in answers}), messages
    return [(calls[i], content) for i, content in answers]


def test_calls_a_client_gave_the_same_call_id_are_answered_each_with_its_own_output() -> None:
    items = [
        user("Paris?"),
        call("item_a", "call_0", "Paris"),
        output("item_b", "call_0", "sunny in paris"),
        user("Lyon?"),
        call("item_c", "call_0", "Lyon"),
        output("item_d", "call_0", "sunny in lyon"),
    ]
    messages = build_messages("", items)
    assert pairs(messages) == [('{"city": "Paris"}', "sunny in paris"), ('{"city": "Lyon"}', "sunny in lyon")]
    assert not any(m["role"] == "user" and "function result" in str(m["content"]) for m in messages)


def test_a_repeated_call_id_whose_second_output_is_missing_is_pending() -> None:
    items = [
        call("item_a", "7", "Paris"),
        output("item_b", "7", "sunny in paris"),
        call("item_c", "7", "Lyon"),
    ]
    assert pairs(build_messages("", items)) == [
        ('{"city": "Paris"}', "sunny in paris"),
        ('{"city": "Lyon"}', PENDING_CALL_OUTPUT),
    ]


def test_a_unique_call_id_is_what_the_brain_sees() -> None:
    items = [call("item_a", "call_abc", "Paris"), output("item_b", "call_abc", "sunny")]
    [assistant, tool] = build_messages("", items)
    assert assistant["tool_calls"][0]["id"] == "call_abc" and tool["tool_call_id"] == "call_abc"
