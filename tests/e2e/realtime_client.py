"""Helpers for driving the server with the stock ``openai`` SDK in end-to-end tests."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from openai import AsyncOpenAI

from tests.support.server import PalaverServer

#: Every wait in these tests is bounded.
EVENT_TIMEOUT = 20.0


def client_for(server: PalaverServer, api_key: str = "test-key") -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=api_key, base_url=server.http_url + "/v1", websocket_base_url=server.ws_base_url
    )


@asynccontextmanager
async def connect(server: PalaverServer, **session: Any) -> AsyncIterator[Any]:
    """Connect, read ``session.created``, and apply ``session`` (if given), reading ``session.updated``."""
    client = client_for(server)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        created = await recv(conn)
        assert created.type == "session.created", created
        if session:
            await conn.session.update(session={"type": "realtime", **session})
            updated = await recv(conn)
            assert updated.type == "session.updated", updated
        yield conn


async def recv(conn: Any, timeout: float = EVENT_TIMEOUT) -> Any:
    return await asyncio.wait_for(conn.recv(), timeout)


async def collect_until(conn: Any, final_type: str, timeout: float = EVENT_TIMEOUT) -> list[Any]:
    """Receive events up to and including the first of ``final_type``."""
    events: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            event = await conn.recv()
            events.append(event)
            if event.type == final_type:
                return events


def of_type(events: list[Any], type_: str) -> list[Any]:
    return [e for e in events if e.type == type_]


async def expect_error(conn: Any) -> Any:
    """The next event, which must be an ``error``: its ``error`` object."""
    event = await recv(conn)
    assert event.type == "error", event
    return event.error


async def text_turn(conn: Any, llm: Any, prompt: str = "hello", answer: str = "Hi there.") -> list[Any]:
    """One typed user message and a completed text response (the scripted ``llm`` says ``answer``)."""
    llm.push_text(answer)
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}
    )
    await conn.response.create()
    events = await collect_until(conn, "response.done")
    done = of_type(events, "response.done")[0]
    assert done.response.status == "completed", done.response.status_details
    assert of_type(events, "response.output_text.done")[0].text == answer
    return events


async def send_audio(conn: Any, wire: bytes, chunk_bytes: int) -> None:
    for i in range(0, len(wire), chunk_bytes):
        await conn.input_audio_buffer.append(audio=base64.b64encode(wire[i : i + chunk_bytes]).decode())


def joined_audio(events: list[Any]) -> bytes:
    return b"".join(base64.b64decode(e.delta) for e in of_type(events, "response.output_audio.delta"))
