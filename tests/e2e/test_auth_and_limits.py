"""API keys (header and browser subprotocols) and the session's maximum duration, on a keyed server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import websockets
import websockets.exceptions
from openai import AsyncOpenAI

from tests.support.server import PalaverServer, running_server

pytestmark = pytest.mark.e2e

KEY = "sk-palaver-test-secret"


@pytest.fixture(scope="module")
def keyed_server(scripted_llm) -> Iterator[PalaverServer]:
    env = {
        "PALAVER_API_KEY": KEY,
        "PALAVER_SESSION_MAX_SECONDS": "3",
        "PALAVER_LLM_BASE_URL": scripted_llm.base_url,
        "PALAVER_LLM_MODEL": "scripted",
    }
    with running_server(env) as server:
        yield server


def _client(server: PalaverServer, key: str) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=key, base_url=server.http_url + "/v1", websocket_base_url=server.ws_base_url)


async def test_wrong_key_is_refused_before_the_upgrade(keyed_server) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        async with _client(keyed_server, "sk-wrong").realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()
    response = info.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "invalid_api_key"


async def test_missing_key_is_refused(keyed_server) -> None:
    url = keyed_server.ws_base_url + "/realtime?model=gpt-realtime"
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        async with websockets.connect(url):
            pass
    assert info.value.response.status_code == 401


async def test_browser_subprotocol_key_is_accepted_and_realtime_echoed(keyed_server) -> None:
    url = keyed_server.ws_base_url + "/realtime?model=gpt-realtime"
    protocols = ["realtime", f"openai-insecure-api-key.{KEY}", "openai-agents-sdk.0.1.0"]
    async with websockets.connect(url, subprotocols=protocols) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "realtime"
        created = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert created["type"] == "session.created"
        assert created["session"]["model"] == "gpt-realtime"


async def test_session_expires_with_error_and_close_1001(keyed_server) -> None:
    async with _client(keyed_server, KEY).realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"
        event = await asyncio.wait_for(conn.recv(), 10)
        assert event.type == "error" and event.error.code == "session_expired"
        assert "maximum duration" in event.error.message
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            await asyncio.wait_for(conn.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001


async def test_beta_clients_are_told_plainly(keyed_server) -> None:
    url = keyed_server.ws_base_url + "/realtime?model=gpt-realtime"
    headers = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "realtime=v1"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        event = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert event["type"] == "error" and event["error"]["code"] == "beta_api_shape_disabled"
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4000
