"""The session state machine without sockets: scripted engine and recogniser, events collected in order."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from palaver.backends.base import Transcript
from palaver.engine.events import (
    EngineEvent,
    EngineFinished,
    EngineRequest,
    FunctionCallArguments,
    FunctionCallEnd,
    FunctionCallStart,
    OutputAudio,
    OutputText,
)
from palaver.protocol.server_events import ServerEvent
from palaver.protocol.session_config import new_realtime_session
from palaver.session.session import Session


class FakeStream:
    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = 0

    def push(self, pcm: bytes) -> str | None:
        self.samples += len(pcm) // 2
        return None

    def finish(self) -> Transcript:
        return Transcript(self.text, self.samples / 16000)


class FakeSTT:
    name = "fake"
    sample_rate = 16000

    def __init__(self, text: str = "hello there") -> None:
        self.text = text

    def open_stream(self, **options: Any):
        return FakeStream(self.text)


class ScriptedEngine:
    """Yields its script; with ``steps`` set, each event waits for a permit, so tests act mid-response."""

    def __init__(self) -> None:
        self.script: list[EngineEvent | Exception] = []
        self.requests: list[EngineRequest] = []
        self.steps: asyncio.Semaphore | None = None
        self.closed = 0
        self.started = asyncio.Event()

    async def generate(self, request: EngineRequest) -> AsyncGenerator[EngineEvent, None]:
        self.requests.append(request)
        self.started.set()
        try:
            for step in list(self.script):
                if self.steps is not None:
                    await self.steps.acquire()
                if isinstance(step, Exception):
                    raise step
                yield step
        finally:
            self.closed += 1


SPEECH = [
    OutputText("Hello. "),
    OutputAudio(b"\x01\x00" * 2400, 24000),
    OutputText("Bye."),
    OutputAudio(b"\x02\x00" * 2400, 24000),
]
DONE = EngineFinished(reason="stop", text_input_tokens=5, text_output_tokens=3)


class Events(list[dict[str, Any]]):
    """The events a session emitted, with a signal for each new one."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()


def build(stt: Any, **options: Any) -> tuple[Session, ScriptedEngine, Events, ThreadPoolExecutor]:
    """A started session on a scripted engine; ``options`` go to ``Session``."""
    executor = ThreadPoolExecutor(2)
    events = Events()
    engine = ScriptedEngine()

    def emit(event: ServerEvent) -> None:
        events.append(json.loads(event.to_json()))
        events.changed.set()

    config = new_realtime_session("gpt-realtime", expires_at=0)
    session = Session(config=config, engine=engine, stt=stt, executor=executor, emit=emit, **options)
    session.start()
    return session, engine, events, executor


@pytest.fixture
async def harness():
    session, engine, events, executor = build(FakeSTT())
    yield session, engine, events
    await session.close()
    executor.shutdown()


def release(engine: ScriptedEngine, n: int) -> None:
    assert engine.steps is not None
    for _ in range(n):
        engine.steps.release()


async def send(target: Session, **event: Any) -> None:
    await target.handle_frame(json.dumps(event))


async def until(events: Events, type_: str, count: int = 1) -> None:
    async with asyncio.timeout(5):
        while sum(e["type"] == type_ for e in events) < count:
            events.changed.clear()
            await events.changed.wait()


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def check_pairs(events: list[dict[str, Any]]) -> None:
    """Every response.created has one response.done; every output item added is done."""
    created = [e["response"]["id"] for e in events if e["type"] == "response.created"]
    done = [e["response"]["id"] for e in events if e["type"] == "response.done"]
    assert sorted(created) == sorted(done)
    added = [e["item"]["id"] for e in events if e["type"] == "response.output_item.added"]
    finished = [e["item"]["id"] for e in events if e["type"] == "response.output_item.done"]
    assert added == finished


async def test_audio_response_lifecycle(harness) -> None:
    session, engine, events = harness
    engine.script = [*SPEECH, DONE]
    await send(session, type="response.create")
    await until(events, "response.done")
    done = events[-1]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0] == {"type": "output_audio", "transcript": "Hello. Bye."}
    assert done["usage"]["input_tokens"] == 5 and done["usage"]["output_token_details"]["text_tokens"] == 3
    assert done["usage"]["output_token_details"]["audio_tokens"] == 4  # 200 ms at 20 tokens/s
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    assert len(audio) == 2 * 4800  # same rate in and out: every sample arrives
    check_pairs(events)
    assert engine.closed == 1


async def test_cancel_is_final_no_late_output(harness) -> None:
    session, engine, events = harness
    engine.steps = asyncio.Semaphore(0)
    engine.script = [*SPEECH, DONE]
    await send(session, type="response.create")
    await until(events, "response.created")
    release(engine, 2)  # transcript and first audio; then the engine waits mid-response
    await until(events, "response.output_audio.delta")
    await send(session, type="response.cancel", event_id="c1")
    n = len(events)
    assert events[-1]["type"] == "response.done" and events[-1]["response"]["status"] == "cancelled"
    item_done = [e for e in events if e["type"] == "response.output_item.done"]
    assert item_done[0]["item"]["status"] == "incomplete"
    release(engine, 10)  # whatever the engine would still have produced must not get out
    await asyncio.sleep(0.05)
    assert len(events) == n
    check_pairs(events)
    assert session.active_response_id is None
    assert engine.closed == 1


async def test_engine_crash_fails_the_response_once(harness, caplog: pytest.LogCaptureFixture) -> None:
    session, engine, events = harness
    engine.script = [OutputText("Half"), RuntimeError("backend died")]
    await send(session, type="response.create")
    await until(events, "response.done")
    await asyncio.sleep(0.02)
    response = events[-1]["response"]
    assert response["status"] == "failed"
    # The client is told a server error happened and its id, never the exception's text; the log
    # has the exception beside the same id.
    error = response["status_details"]["error"]
    assert error["type"] == "server_error" and error["code"] == "server_error"
    found = re.fullmatch(
        r"The response failed because of a server error \(error id (err_[0-9a-f]{12})\)\.", error["message"]
    )
    assert found is not None, error
    (logged,) = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert logged.exc_info is not None and str(logged.exc_info[1]) == "backend died"
    assert types(events).count("response.done") == 1
    check_pairs(events)
    # The session lives on.
    engine.script = [*SPEECH, DONE]
    await send(session, type="response.create")
    await until(events, "response.done", 2)
    assert events[-1]["response"]["status"] == "completed"


async def test_function_call_items_and_order(harness) -> None:
    session, engine, events = harness
    engine.script = [
        OutputText("Let me check. "),
        FunctionCallStart(call_id="call_1", name="lookup"),
        FunctionCallArguments('{"id"'),
        FunctionCallArguments(": 42}"),
        FunctionCallEnd(),
        DONE,
    ]
    await send(session, type="response.create", response={"output_modalities": ["text"]})
    await until(events, "response.done")
    args_done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert args_done["arguments"] == '{"id": 42}' and args_done["name"] == "lookup"
    output = events[-1]["response"]["output"]
    assert [o["type"] for o in output] == ["message", "function_call"]
    assert output[1]["status"] == "completed" and output[1]["call_id"] == "call_1"
    check_pairs(events)
    # The call's output goes into the next response's context, right after the call.
    await send(
        session,
        type="conversation.item.create",
        item={"type": "function_call_output", "call_id": "call_1", "output": "found"},
    )
    engine.script = [DONE]
    await send(session, type="response.create")
    await until(events, "response.done", 2)
    messages = engine.requests[-1].messages
    assert messages[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "found"}
    assert messages[-2]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"id": 42}'}


async def test_committed_audio_is_transcribed_before_the_response_reads_it(harness) -> None:
    session, engine, events = harness
    await send(
        session,
        type="session.update",
        session={"type": "realtime", "audio": {"input": {"turn_detection": None}}},
    )
    pcm = base64.b64encode(b"\0\0" * (24000 // 4)).decode()  # 250 ms at 24 kHz
    await send(session, type="input_audio_buffer.append", audio=pcm)
    await send(session, type="input_audio_buffer.commit")
    engine.script = [DONE]
    await send(session, type="response.create")
    await until(events, "response.done")
    assert engine.requests[0].messages[-1] == {"role": "user", "content": "hello there"}
    committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
    assert committed["previous_item_id"] is None


async def test_item_placement(harness) -> None:
    session, _, events = harness

    def message(item_id: str) -> dict[str, Any]:
        return {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": item_id}],
        }

    await send(session, type="conversation.item.create", item=message("a"))
    await send(session, type="conversation.item.create", item=message("b"))
    await send(session, type="conversation.item.create", item=message("c"), previous_item_id="root")
    await send(session, type="conversation.item.create", item=message("d"), previous_item_id="a")
    assert [i.id for i in session.conversation.items] == ["c", "a", "d", "b"]
    added = [e for e in events if e["type"] == "conversation.item.added"]
    assert [a["previous_item_id"] for a in added] == [None, "a", None, "a"]
    await send(session, type="conversation.item.create", item=message("a"), event_id="dup")
    assert events[-1]["type"] == "error" and events[-1]["error"]["event_id"] == "dup"


async def test_close_mid_response_sends_nothing_more(harness) -> None:
    session, engine, events = harness
    engine.steps = asyncio.Semaphore(0)
    engine.script = [*SPEECH, DONE]
    await send(session, type="response.create")
    await until(events, "response.created")
    async with asyncio.timeout(5):
        await engine.started.wait()  # the engine has started and waits for its first step
    n = len(events)
    await session.close()
    release(engine, 10)
    await asyncio.sleep(0.05)
    assert len(events) == n
    assert engine.closed == 1


async def test_bad_input_reference_is_an_error_not_a_half_made_response(harness) -> None:
    session, engine, events = harness
    engine.script = [DONE]
    await send(
        session,
        type="response.create",
        event_id="r1",
        response={"input": [{"type": "item_reference", "id": "nope"}]},
    )
    assert events[-1]["type"] == "error" and events[-1]["error"]["event_id"] == "r1"
    assert "response.created" not in types(events)
    assert session.active_response_id is None
    # Out-of-band with its own input: only that input is the context.
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "side question"}]}
    await send(session, type="response.create", response={"conversation": "none", "input": [item]})
    await until(events, "response.done")
    assert engine.requests[-1].messages[-1] == {"role": "user", "content": "side question"}
    assert session.conversation.items == []


class BrokenSTT(FakeSTT):
    def open_stream(self, **options: Any):
        stream = FakeStream("")

        def finish() -> Transcript:
            raise RuntimeError("recogniser crashed")

        stream.finish = finish  # type: ignore[method-assign]
        return stream


async def test_failed_transcription_is_reported_and_the_session_lives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session, engine, events, executor = build(BrokenSTT())
    try:
        update = {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}
        await send(session, type="session.update", session=update)
        await send(session, type="input_audio_buffer.append", audio=base64.b64encode(b"\0\0" * 4800).decode())
        await send(session, type="input_audio_buffer.commit")
        await until(events, "conversation.item.input_audio_transcription.failed")
        failed = events[-1]
        assert (
            failed["item_id"]
            == next(e for e in events if e["type"] == "input_audio_buffer.committed")["item_id"]
        )
        error = failed["error"]  # a generic message and an id; the exception's text is in the log only
        assert error["type"] == "server_error" and error["code"] == "transcription_failed"
        found = re.fullmatch(
            r"The transcription failed because of a server error \(error id (err_[0-9a-f]{12})\)\.",
            error["message"],
        )
        assert found is not None, error
        (logged,) = [r for r in caplog.records if found.group(1) in r.getMessage()]
        assert logged.exc_info is not None and "recogniser crashed" in str(logged.exc_info[1])
        engine.script = [DONE]
        await send(session, type="response.create")
        await until(events, "response.done")
        assert events[-1]["response"]["status"] == "completed"
    finally:
        await session.close()
        executor.shutdown()
