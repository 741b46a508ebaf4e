"""Test doubles for the transport side of a call, and an in-process server to talk to."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from palaver.backends.registry import Backends
from palaver.calls.call import Call
from palaver.engine.cascade import CascadeEngine
from palaver.protocol.session_config import RealtimeSessionConfig
from palaver.session.session import Session
from tests.support.server import free_port


class FakeControl:
    """A ``CallControl`` that records what it was asked; ``fail`` makes the next command raise.

    With ``make_session`` set, ``accept`` starts a real session on the call, as the SIP bridge does.
    """

    def __init__(self, make_session: Callable[[RealtimeSessionConfig, Call], Session] | None = None) -> None:
        self.commands: list[tuple[str, Any]] = []
        self.call: Call | None = None
        self.make_session = make_session
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None  # when set, commands wait for it
        self.received = asyncio.Event()

    def _record(self, name: str, value: Any) -> None:
        self.commands.append((name, value))
        self.received.set()
        if self.fail is not None:
            exc, self.fail = self.fail, None
            raise exc

    async def _gate(self) -> None:
        if self.gate is not None:
            await self.gate.wait()

    async def accept(self, config: RealtimeSessionConfig) -> None:
        self._record("accept", config)
        await self._gate()
        if self.make_session is not None and self.call is not None:
            session = self.make_session(config, self.call)
            self.call.session = session
            session.start()

    async def reject(self, status_code: int) -> None:
        self._record("reject", status_code)
        await self._gate()

    async def refer(self, target_uri: str) -> None:
        self._record("refer", target_uri)
        await self._gate()

    async def hangup(self) -> None:
        self._record("hangup", None)
        await self._gate()
        if self.call is not None and self.call.session is not None:
            await self.call.session.close()

    def names(self) -> list[str]:
        return [name for name, _ in self.commands]


def session_maker(backends: Backends) -> Callable[[RealtimeSessionConfig, Call], Session]:
    """Sessions like the WebSocket transport's, emitting to the call's fanout."""

    def make(config: RealtimeSessionConfig, call: Call) -> Session:
        engine = CascadeEngine(chat=backends.chat, tts=backends.tts, executor=backends.executor)
        return Session(
            config=config,
            engine=engine,
            stt=backends.stt,
            vad=backends.vad,
            executor=backends.executor,
            stt_slots=backends.stt_slots,
            emit=call.fanout,
        )

    return make


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 in this event loop; yields its http:// base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws_ping_interval=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before starting")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
