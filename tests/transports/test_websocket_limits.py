"""The limits belong to the app, not to ``palaver serve``: ``create_app`` run by a plain uvicorn
(its default 16 MiB frame cap, no Palaver flags) still caps frames, sessions and REST bodies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets
import websockets.exceptions

from palaver.backends.registry import Backends, build_backends
from palaver.config import Settings
from palaver.server.app import create_app
from tests.calls.fakes import serving
from tests.support.wire import validate_server_events

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def backends() -> Iterator[Backends]:
    loaded = build_backends(Settings(stt="null", vad="energy"))
    try:
        yield loaded
    finally:
        loaded.close()


@pytest.fixture
async def url(backends: Backends, tmp_path: Path) -> AsyncIterator[str]:
    wire = tmp_path / "wire.jsonl"
    settings = Settings(
        stt="null",
        vad="energy",
        sip_enabled=False,
        max_sessions=1,
        ws_max_frame_bytes=1000,
        http_max_body_bytes=100,
        wire_log=str(wire),
    )
    async with serving(create_app(settings, backends)) as base:
        yield base
    lines = wire.read_text(encoding="utf-8").splitlines() if wire.exists() else []
    assert validate_server_events(lines) == []


def _ws(url: str) -> str:
    return url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"


async def test_an_embedded_app_caps_frames_itself(url: str) -> None:
    async with websockets.connect(_ws(url)) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
        await ws.send(json.dumps({"type": "input_audio_buffer.clear", "pad": "x" * 2000}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error["type"] == "error" and error["error"]["code"] == "frame_too_large"
        await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))  # the session goes on
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "input_audio_buffer.cleared"


async def test_an_embedded_app_counts_sessions_and_caps_bodies(url: str) -> None:
    async with websockets.connect(_ws(url)) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            async with websockets.connect(_ws(url)):
                pass
        assert info.value.response.status_code == 429
        async with httpx.AsyncClient() as http:
            health = (await http.get(url + "/healthz")).json()
            assert (health["sessions"], health["max_sessions"]) == (1, 1)
            response = await http.post(
                url + "/v1/realtime/calls/rtc_x/hangup", content=b"{" + b" " * 200 + b"}"
            )
            assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
