"""Call control over REST with the stock ``openai`` SDK against a real server on 127.0.0.1.

The transport side is a fake ``CallControl`` that records what it is asked to do.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from palaver.backends.registry import Backends
from palaver.calls.call import Call, CallState
from palaver.calls.switchboard import Switchboard
from palaver.config import Settings
from palaver.server.app import create_app
from tests.calls.fakes import FakeControl, serving

pytestmark = pytest.mark.e2e

KEY = "sk-palaver-calls-test"


@dataclass
class Server:
    url: str
    switchboard: Switchboard
    client: AsyncOpenAI

    def new_call(self) -> tuple[Call, FakeControl]:
        control = FakeControl()
        call = self.switchboard.new_call(
            control=control, sip_headers=[{"name": "To", "value": "<sip:1000@pbx>"}], dialled="1000"
        )
        control.call = call
        return call, control

    async def post(self, path: str, **kwargs: object) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url) as http:
            headers = {"Authorization": f"Bearer {KEY}"}
            return await http.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def server(backends: Backends) -> AsyncIterator[Server]:
    app = create_app(Settings(api_key=KEY, stt="null", vad="energy"), backends)
    async with serving(app) as url:
        client = AsyncOpenAI(api_key=KEY, base_url=url + "/v1", max_retries=0)
        try:
            yield Server(url, app.state.switchboard, client)
        finally:
            await client.close()


def error_of(exc: openai.APIStatusError) -> dict[str, object]:
    body = exc.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "code", "param"}, body
    return body


async def test_accept_with_the_sdk_answers_the_call_with_that_session(server: Server) -> None:
    call, control = server.new_call()
    result = await server.client.realtime.calls.accept(
        call.id,
        type="realtime",
        model="gpt-realtime",
        instructions="You are the front desk.",
        audio={"output": {"voice": "marin"}},
        tools=[{"type": "function", "name": "lookup", "description": "Look it up", "parameters": {}}],
    )
    assert result is None
    assert call.state is CallState.ACCEPTED
    [(name, config)] = control.commands
    assert name == "accept"
    assert config.instructions == "You are the front desk." and config.model == "gpt-realtime"
    assert config.audio.output.voice == "marin" and [t.name for t in config.tools] == ["lookup"]
    assert config.id.startswith("sess_") and config.expires_at > 0

    with pytest.raises(openai.ConflictError) as info:
        await server.client.realtime.calls.accept(call.id, type="realtime")
    assert error_of(info.value)["code"] == "call_already_accepted"
    with pytest.raises(openai.ConflictError):
        await server.client.realtime.calls.reject(call.id)
    assert len(control.commands) == 1


async def test_a_bad_session_config_is_a_400_with_openais_error_shape(server: Server) -> None:
    call, control = server.new_call()
    with pytest.raises(openai.BadRequestError) as info:
        await server.client.realtime.calls.accept(call.id, type="realtime", output_modalities=["smell"])  # type: ignore[list-item]
    error = error_of(info.value)
    assert error["type"] == "invalid_request_error" and error["param"] == "output_modalities[0]"
    response = await server.post(f"/v1/realtime/calls/{call.id}/accept", json={"instructions": "hi"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_required_parameter"
    assert response.json()["error"]["param"] == "type"
    response = await server.post(
        f"/v1/realtime/calls/{call.id}/accept", json={"type": "realtime", "colour": 1}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_parameter"
    response = await server.post(f"/v1/realtime/calls/{call.id}/accept", content=b"{not json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    # Bodies that would crash a plain json.loads (RecursionError) or never encode back: 400 too.
    for hostile in (
        b'{"type": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"type": NaN}',
        b'{"t": "\\ud800"}',
    ):
        response = await server.post(f"/v1/realtime/calls/{call.id}/accept", content=hostile)
        assert response.status_code == 400, hostile[:40]
        assert response.json()["error"]["code"] == "invalid_json"
    assert control.commands == [] and call.state is CallState.PENDING


async def test_reject_defaults_to_603_and_takes_a_status(server: Server) -> None:
    call, control = server.new_call()
    assert await server.client.realtime.calls.reject(call.id) is None
    assert control.commands == [("reject", 603)] and call.state is CallState.REJECTED
    call, control = server.new_call()
    for bad in (200, 700, "486", True):
        with pytest.raises(openai.BadRequestError) as info:
            await server.client.realtime.calls.reject(call.id, status_code=bad)  # type: ignore[arg-type]
        assert error_of(info.value)["param"] == "status_code"
    await server.client.realtime.calls.reject(call.id, status_code=486)
    assert control.commands == [("reject", 486)]


async def test_refer_and_hangup_need_an_accepted_call(server: Server) -> None:
    call, control = server.new_call()
    with pytest.raises(openai.ConflictError) as info:
        await server.client.realtime.calls.refer(call.id, target_uri="tel:+14155550123")
    assert error_of(info.value)["code"] == "call_not_accepted"
    await server.client.realtime.calls.accept(call.id, type="realtime")
    for bad in ("http://example.com", "sip:", "sip:a b@c", "tel:<1>"):
        with pytest.raises(openai.BadRequestError) as info:
            await server.client.realtime.calls.refer(call.id, target_uri=bad)
        assert error_of(info.value)["param"] == "target_uri"
    response = await server.post(f"/v1/realtime/calls/{call.id}/refer", json={})
    assert response.status_code == 400 and response.json()["error"]["code"] == "missing_required_parameter"
    assert await server.client.realtime.calls.refer(call.id, target_uri="sip:agent@example.com") is None
    assert call.state is CallState.REFERRED
    assert await server.client.realtime.calls.hangup(call.id) is None
    assert control.names() == ["accept", "refer", "hangup"]
    assert call.state is CallState.ENDED
    with pytest.raises(openai.ConflictError) as info:
        await server.client.realtime.calls.hangup(call.id)
    assert error_of(info.value)["code"] == "call_ended"


async def test_hangup_of_a_pending_call_declines_it(server: Server) -> None:
    call, control = server.new_call()
    await server.client.realtime.calls.hangup(call.id)
    assert control.commands == [("reject", 603)] and call.state is CallState.REJECTED


async def test_unknown_calls_wrong_keys_and_transport_failures(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await server.client.realtime.calls.accept("rtc_doesnotexist", type="realtime")
    assert error_of(info.value)["code"] == "call_not_found"
    call, control = server.new_call()
    stranger = AsyncOpenAI(api_key="sk-wrong", base_url=server.url + "/v1", max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError) as auth:
            await stranger.realtime.calls.reject(call.id)
    finally:
        await stranger.close()
    assert error_of(auth.value)["code"] == "invalid_api_key"
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{server.url}/v1/realtime/calls/{call.id}/reject")
    assert response.status_code == 401
    control.fail = RuntimeError("the line dropped")
    with pytest.raises(openai.InternalServerError) as failed:
        await server.client.realtime.calls.accept(call.id, type="realtime")
    error = error_of(failed.value)
    assert error["type"] == "server_error" and error["code"] == "call_control_failed"
    # The client gets a generic message and an id; the exception's text stays in the log, by the id.
    message = str(error["message"])
    found = re.fullmatch(
        r"The call control request failed because of a server error \(error id (err_[0-9a-f]{12})\)\.",
        message,
    )
    assert found is not None, message
    (logged,) = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert logged.exc_info is not None and "the line dropped" in str(logged.exc_info[1])
    assert call.state is CallState.PENDING
    call.mark_ended()
    with pytest.raises(openai.ConflictError) as ended:
        await server.client.realtime.calls.accept(call.id, type="realtime")
    assert error_of(ended.value)["code"] == "call_ended"
