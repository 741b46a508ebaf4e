"""The sideband WebSocket ``/v1/realtime?call_id=rtc_…`` with the stock ``openai`` SDK.

A real server on 127.0.0.1 holds a call whose fake transport starts a real session (echo brain,
null recogniser) on accept, as the SIP bridge does; sidebands observe and drive that session.
Every event the server sends is checked against ``openai.types.realtime`` from its wire log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
import websockets.exceptions
from openai import AsyncOpenAI

from palaver.backends.registry import Backends
from palaver.calls.call import Call, CallState
from palaver.calls.switchboard import Switchboard
from palaver.config import Settings
from palaver.server.app import create_app
from tests.calls.fakes import FakeControl, serving, session_maker
from tests.support.wire import validate_server_events

pytestmark = pytest.mark.e2e

KEY = "sk-palaver-sideband-test"


@dataclass
class Server:
    url: str
    switchboard: Switchboard
    client: AsyncOpenAI
    backends: Backends

    def new_call(self) -> tuple[Call, FakeControl]:
        control = FakeControl(make_session=session_maker(self.backends))
        call = self.switchboard.new_call(
            control=control, sip_headers=[{"name": "To", "value": "<sip:1000@pbx>"}], dialled="1000"
        )
        control.call = call
        return call, control

    async def answered_call(self, instructions: str = "You answer the phone.") -> tuple[Call, FakeControl]:
        call, control = self.new_call()
        await self.client.realtime.calls.accept(call.id, type="realtime", instructions=instructions)
        assert call.live
        return call, control

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/realtime"


@pytest.fixture
async def server(backends: Backends, tmp_path: Path) -> AsyncIterator[Server]:
    wire = tmp_path / "wire.jsonl"
    settings = Settings(api_key=KEY, stt="null", vad="energy", wire_log=str(wire))
    app = create_app(settings, backends)
    async with serving(app) as url:
        client = AsyncOpenAI(
            api_key=KEY, base_url=url + "/v1", websocket_base_url=url.replace("http", "ws") + "/v1"
        )
        try:
            yield Server(url, app.state.switchboard, client, backends)
        finally:
            for call in app.state.switchboard.registry.calls():
                if call.session is not None:
                    await call.session.close()
                call.mark_ended()
            await client.close()
    lines = wire.read_text(encoding="utf-8").splitlines() if wire.exists() else []
    assert validate_server_events(lines) == []  # also: no event_id twice, however many sidebands


async def next_of(conn: Any, kind: str, limit: int = 200) -> Any:
    for _ in range(limit):
        event = await asyncio.wait_for(conn.recv(), 20)
        if event.type == kind:
            return event
        assert event.type != "error", event
    raise AssertionError(f"no {kind} in {limit} events")


async def refused_status(server: Server, call_id: str, key: str = KEY) -> int:
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        async with websockets.connect(
            f"{server.ws_url}?call_id={call_id}", additional_headers={"Authorization": f"Bearer {key}"}
        ):
            pass
    response = info.value.response
    if response.status_code == 404:
        assert json.loads(response.body)["error"]["code"] == "call_not_found"
    return response.status_code


async def test_unknown_pending_and_ended_calls_are_404_and_a_wrong_key_401(server: Server) -> None:
    assert await refused_status(server, "rtc_nosuchcall") == 404
    call, _ = server.new_call()
    assert await refused_status(server, call.id) == 404  # not accepted yet: OpenAI requires the accept first
    assert await refused_status(server, call.id, key="sk-wrong") == 401
    await server.client.realtime.calls.reject(call.id)
    assert await refused_status(server, call.id) == 404
    answered, _ = await server.answered_call()
    await server.client.realtime.calls.hangup(answered.id)
    assert await refused_status(server, answered.id) == 404


async def test_the_sideband_sees_the_session_and_drives_it(server: Server) -> None:
    call, _ = await server.answered_call("You answer the phone.")
    assert call.session is not None
    async with server.client.realtime.connect(call_id=call.id) as conn:
        created = await next_of(conn, "session.created")
        assert created.session.instructions == "You answer the phone."
        assert created.session.id == call.session.config.id
        await conn.session.update(
            session={"type": "realtime", "instructions": "Now be terse.", "output_modalities": ["text"]}
        )
        updated = await next_of(conn, "session.updated")
        assert updated.session.instructions == "Now be terse."
        assert call.session.config.instructions == "Now be terse."
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hello phone"}],
            }
        )
        await next_of(conn, "conversation.item.done")
        await conn.response.create()
        done = await next_of(conn, "response.done")
        assert done.response.status == "completed"
    assert call.state is CallState.ACCEPTED and call.fanout.listeners == 0  # leaving does not end the call


async def test_several_sidebands_each_get_every_event(server: Server) -> None:
    call, _ = await server.answered_call()
    async with server.client.realtime.connect(call_id=call.id) as first:
        await next_of(first, "session.created")
        async with server.client.realtime.connect(call_id=call.id) as second:
            await next_of(second, "session.created")
            assert call.fanout.listeners == 2
            await first.session.update(session={"type": "realtime", "instructions": "From the first."})
            assert (await next_of(first, "session.updated")).session.instructions == "From the first."
            assert (await next_of(second, "session.updated")).session.instructions == "From the first."
        await second_gone(call)
        await first.session.update(session={"type": "realtime", "instructions": "Still here."})
        assert (await next_of(first, "session.updated")).session.instructions == "Still here."


async def second_gone(call: Call) -> None:
    for _ in range(1000):
        if call.fanout.listeners == 1:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the second sideband never detached")


async def test_the_call_ending_closes_sidebands_with_1000_after_the_last_events(server: Server) -> None:
    call, _ = await server.answered_call()
    url = f"{server.ws_url}?call_id={call.id}"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] == "session.created"
        await ws.send(
            json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "Bye."}})
        )
        assert json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] == "session.updated"
        await server.client.realtime.calls.hangup(call.id)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 20)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000
    assert call.state is CallState.ENDED
