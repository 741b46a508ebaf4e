"""Server-wide limits against the real ``palaver serve``: sessions at once across WebSocket and
SIP (429 / 486), the WebSocket idle timeout, the app's own frame limit (and uvicorn's hard cap
above it), and the REST body cap.

Two servers for the module:

- ``limited``: ``PALAVER_MAX_SESSIONS=2``, a webhook deciding its calls (so a test can see that
  a call over the limit is refused before any webhook is sent);
- ``tight``: ``PALAVER_WS_IDLE_SECONDS=1``, ``PALAVER_WS_MAX_FRAME_BYTES=65536`` and
  ``PALAVER_HTTP_MAX_BODY_BYTES=4096``.

The session count is read from ``/healthz`` (``sessions``, ``max_sessions``); a test waits for
it to settle (a slot is given back once the server has seen the socket go) within bounds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import websockets
import websockets.exceptions
from websockets.asyncio.client import ClientConnection

from tests.support.call_watch import rest_client
from tests.support.scripted_llm import ScriptedLLM
from tests.support.server import PalaverServer
from tests.support.sip_peers import (
    SCENARIOS,
    SippProcess,
    require_binary,
    run_sipp_async,
    wav_to_rtp_pcap,
    write_wav,
)
from tests.support.sip_server import accept_with, hooked_server
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

KEY = "sk-palaver-limits"
SECRET = "whsec_" + base64.b64encode(b"palaver-limits-secret-32-bytes!!").decode()
MAX_FRAME = 65536
MAX_BODY = 4096
#: Every wait is bounded; generous on purpose (shared, noisy machines).
WAIT = 20.0
CALL_TIMEOUT = 40.0


@pytest.fixture(scope="module")
def limited(scripted_llm: ScriptedLLM) -> Iterator[tuple[PalaverServer, WebhookReceiver]]:
    with hooked_server(
        scripted_llm, api_key=KEY, secret=SECRET, PALAVER_MAX_SESSIONS="2", PALAVER_STT="null"
    ) as pair:
        yield pair


@pytest.fixture(scope="module")
def tight_hooked(scripted_llm: ScriptedLLM) -> Iterator[tuple[PalaverServer, WebhookReceiver]]:
    with hooked_server(
        scripted_llm,
        api_key=KEY,
        secret=SECRET,
        PALAVER_STT="null",
        PALAVER_WS_IDLE_SECONDS="1",
        PALAVER_WS_MAX_FRAME_BYTES=str(MAX_FRAME),
        PALAVER_HTTP_MAX_BODY_BYTES=str(MAX_BODY),
    ) as pair:
        yield pair


@pytest.fixture
def tight(tight_hooked: tuple[PalaverServer, WebhookReceiver]) -> PalaverServer:
    return tight_hooked[0]


@pytest.fixture(scope="module")
def silence_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    wav = write_wav(folder / "silence.wav", b"\0\0" * 8000)
    wav_to_rtp_pcap(wav, folder / "silence.pcap")
    return folder / "silence.pcap"


# ------------------------------------------------------------------------------ helpers


async def _health(server: PalaverServer) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(server.http_url + "/healthz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _settled(server: PalaverServer, sessions: int) -> dict[str, Any]:
    """/healthz once it counts ``sessions`` (fails after a bounded wait with the last count)."""
    health: dict[str, Any] = {}
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        health = await _health(server)
        if health["sessions"] == sessions:
            return health
        await asyncio.sleep(0.05)
    raise AssertionError(f"/healthz never counted {sessions} sessions: {health}")


def _url(server: PalaverServer) -> str:
    return server.ws_base_url + "/realtime?model=gpt-realtime"


async def _open(server: PalaverServer, **options: Any) -> ClientConnection:
    """A new session (raw WebSocket), past its ``session.created``."""
    ws = await websockets.connect(
        _url(server), additional_headers={"Authorization": f"Bearer {KEY}"}, open_timeout=WAIT, **options
    )
    created = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert created["type"] == "session.created", created
    return ws


async def _refused(server: PalaverServer) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body of a refused upgrade."""
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        ws = await _open(server)
        await ws.close()
    response = info.value.response
    return response.status_code, json.loads(response.body)


async def _sideband(server: PalaverServer, call_id: str) -> ClientConnection:
    """A sideband on ``call_id`` once the webhook's accept has gone through (404 until then)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return await websockets.connect(
                server.ws_base_url + f"/realtime?call_id={call_id}",
                additional_headers={"Authorization": f"Bearer {KEY}"},
                open_timeout=WAIT,
            )
        except websockets.exceptions.InvalidStatus as refused:
            if refused.response.status_code != 404 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def _assert_session_limit(status: int, body: dict[str, Any]) -> None:
    assert status == 429
    error = body["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "session_limit_reached", body
    assert "at most 2" in error["message"] and error["param"] is None


async def _next(ws: ClientConnection, timeout: float = WAIT) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return event


async def _until(ws: ClientConnection, kind: str, timeout: float = WAIT) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            events.append(await _next(ws, timeout))
            if events[-1]["type"] == kind:
                return events


async def _closed_code(
    ws: ClientConnection, timeout: float = WAIT
) -> tuple[list[dict[str, Any]], int | None]:
    """Read until the server closes; the events read and the close code it sent."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                events.append(json.loads(await ws.recv()))
        except websockets.exceptions.ConnectionClosed as closed:
            return events, closed.rcvd.code if closed.rcvd is not None else None


# ------------------------------------------------------------------- PALAVER_MAX_SESSIONS


async def test_a_third_websocket_session_gets_429_until_one_closes(
    limited: tuple[PalaverServer, WebhookReceiver],
) -> None:
    server, _ = limited
    await _settled(server, 0)
    first, second = await _open(server), await _open(server)
    try:
        health = await _settled(server, 2)
        assert health["max_sessions"] == 2
        # The stock SDK is refused before the upgrade, with OpenAI's JSON error body.
        client = openai.AsyncOpenAI(
            api_key=KEY, base_url=server.http_url + "/v1", websocket_base_url=server.ws_base_url
        )
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            async with client.realtime.connect(model="gpt-realtime") as conn:
                await conn.recv()
        await client.close()
        _assert_session_limit(info.value.response.status_code, json.loads(info.value.response.body))
        assert "session limit reached" in server.stderr_text()

        await first.close()
        await _settled(server, 1)
        third = await _open(server)  # the freed slot is taken again
        await third.close()
    finally:
        await first.close()
        await second.close()
    await _settled(server, 0)


async def test_slots_never_leak_however_sessions_end(limited: tuple[PalaverServer, WebhookReceiver]) -> None:
    server, _ = limited
    await _settled(server, 0)
    for _ in range(4):
        # A normal close, and a client that vanishes without a close frame ...
        polite, rude = await _open(server), await _open(server)
        _assert_session_limit(*(await _refused(server)))
        await polite.close()
        rude.transport.abort()
        await _settled(server, 0)
        # ... a beta client (refused with 4000 after the upgrade, so it held a slot) ...
        beta = await websockets.connect(
            _url(server),
            additional_headers={"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "realtime=v1"},
            open_timeout=WAIT,
        )
        events, code = await _closed_code(beta)
        assert code == 4000 and events[0]["error"]["code"] == "beta_api_shape_disabled"
        # ... and a session that had a response running when its client left.
        busy = await _open(server)
        await busy.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}}))
        await _until(busy, "response.created")
        busy.transport.abort()
        await _settled(server, 0)
    # After 16 sessions came and went, both slots are free again.
    again = [await _open(server), await _open(server)]
    _assert_session_limit(*(await _refused(server)))
    for ws in again:
        await ws.close()
    await _settled(server, 0)


async def test_a_call_over_the_limit_gets_486_before_any_webhook(
    limited: tuple[PalaverServer, WebhookReceiver], tmp_path: Path
) -> None:
    require_binary("sipp")
    server, hook = limited
    hook.decide = accept_with(server, KEY)  # were the webhook sent, the call would be answered
    await _settled(server, 0)
    sessions = [await _open(server), await _open(server)]
    try:
        await _settled(server, 2)
        deliveries = len(hook.deliveries)
        result = await run_sipp_async(
            SCENARIOS / "uac_reject.xml",  # fails on any final response but 486
            f"127.0.0.1:{server.sip_port}",
            workdir=tmp_path / "sipp",
            service="overflow",
            timeout_s=CALL_TIMEOUT,
        )
        assert result.ok, result.describe()
        assert len(hook.deliveries) == deliveries, "a webhook was sent for a call over the limit"
        assert "session limit reached (2 at once); busy (486)" in server.stderr_text()
        assert (await _health(server))["sessions"] == 2  # the refused call took no slot
    finally:
        for ws in sessions:
            await ws.close()
    await _settled(server, 0)


async def test_a_live_call_counts_against_websocket_sessions(
    limited: tuple[PalaverServer, WebhookReceiver], tmp_path: Path, silence_pcap: Path
) -> None:
    require_binary("sipp")
    server, hook = limited
    hook.decide = accept_with(server, KEY, instructions="You hold the line.")
    await _settled(server, 0)
    sipp = SippProcess(
        SCENARIOS / "uac_hangup.xml",  # stays up until the server hangs up
        f"127.0.0.1:{server.sip_port}",
        workdir=tmp_path / "sipp",
        pcaps={"speech.pcap": silence_pcap},
        service="holding",
        timeout_s=CALL_TIMEOUT,
    )
    with sipp:
        event = await asyncio.to_thread(hook.wait_event, WAIT)
        call_id = event.data.call_id
        await _settled(server, 1)  # the call holds a slot
        ws = await _open(server)
        try:
            await _settled(server, 2)
            _assert_session_limit(*(await _refused(server)))  # call + one WebSocket = the limit
            # A sideband attaches to the call's session: it is not a new session, so not refused.
            sideband = await _sideband(server, call_id)
            assert (await _next(sideband))["type"] == "session.created"
            assert (await _health(server))["sessions"] == 2
            async with rest_client(server, KEY) as client:
                await client.realtime.calls.hangup(call_id)
            _, code = await _closed_code(sideband)
            assert code == 1000  # the call ended
            result = await sipp.wait_async()
            assert result.ok, result.describe()
            await _settled(server, 1)  # the call's slot is back
            other = await _open(server)
            await other.close()
        finally:
            await ws.close()
    await _settled(server, 0)


# ------------------------------------------------------------------------- idle timeout


async def test_an_idle_socket_is_closed_1001_after_an_error(tight: PalaverServer) -> None:
    ws = await _open(tight)
    started = time.monotonic()
    events, code = await _closed_code(ws, timeout=10)
    waited = time.monotonic() - started
    assert code == 1001
    assert [e["type"] for e in events] == ["error"], events
    assert events[0]["error"]["code"] == "session_idle_timeout"
    assert "idle for 1 seconds" in events[0]["error"]["message"]
    assert 0.8 <= waited < 8, waited


async def test_a_client_sending_frames_is_not_idle(tight: PalaverServer) -> None:
    ws = await _open(tight)
    try:
        deadline = time.monotonic() + 3.0  # three idle periods
        while time.monotonic() < deadline:
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            assert (await _next(ws))["type"] == "input_audio_buffer.cleared"
            await asyncio.sleep(0.4)
        # Once it stops, the same socket does time out.
        events, code = await _closed_code(ws, timeout=10)
        assert code == 1001 and events[-1]["error"]["code"] == "session_idle_timeout"
    finally:
        await ws.close()


async def test_a_live_response_is_not_idle_even_when_silent(tight: PalaverServer, llm: ScriptedLLM) -> None:
    llm.push_hang()  # the brain answers nothing: no event is sent while the response is live
    ws = await _open(tight)
    try:
        await ws.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}}))
        await _until(ws, "response.created")
        await llm.wait_for_requests(1)
        with pytest.raises(TimeoutError):
            event = await _next(ws, timeout=3.0)  # three idle periods: nothing, and no close
            raise AssertionError(f"unexpected event while the response hangs: {event}")
        await ws.send(json.dumps({"type": "response.cancel"}))
        done = (await _until(ws, "response.done"))[-1]
        assert done["response"]["status"] == "cancelled"
        events, code = await _closed_code(ws, timeout=10)  # idle from here on
        assert code == 1001 and [e["error"]["code"] for e in events] == ["session_idle_timeout"]
    finally:
        await ws.close()


async def test_a_quiet_sideband_of_a_live_call_is_not_idle(
    tight_hooked: tuple[PalaverServer, WebhookReceiver], tmp_path: Path, silence_pcap: Path
) -> None:
    require_binary("sipp")
    server, hook = tight_hooked
    hook.decide = accept_with(server, KEY, instructions="You listen.")
    sipp = SippProcess(
        SCENARIOS / "uac_hangup.xml",
        f"127.0.0.1:{server.sip_port}",
        workdir=tmp_path / "sipp",
        pcaps={"speech.pcap": silence_pcap},
        service="quiet",
        timeout_s=CALL_TIMEOUT,
    )
    with sipp:
        call_id = (await asyncio.to_thread(hook.wait_event, WAIT)).data.call_id
        sideband = await _sideband(server, call_id)
        assert (await _next(sideband))["type"] == "session.created"
        with pytest.raises(TimeoutError):  # three idle periods with nothing either way: still open
            event = await _next(sideband, timeout=3.0)
            raise AssertionError(f"unexpected event on a silent call: {event}")
        async with rest_client(server, KEY) as client:
            await client.realtime.calls.hangup(call_id)
        events, code = await _closed_code(sideband)
        assert code == 1000, events  # closed because the call ended, not as idle
        assert not [e for e in events if e["type"] == "error"], events
        result = await sipp.wait_async()
    assert result.ok, result.describe()


# --------------------------------------------------------------------------- frame limit


def _item(text: str) -> str:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return json.dumps({"type": "conversation.item.create", "item": item}, ensure_ascii=False)


async def test_a_frame_over_the_limit_gets_an_error_and_the_session_goes_on(
    tight: PalaverServer, llm: ScriptedLLM
) -> None:
    ws = await _open(tight)
    try:
        big = _item("x" * (MAX_FRAME + 10))
        assert MAX_FRAME < len(big) < 2 * MAX_FRAME
        await ws.send(big)
        error = await _next(ws)
        assert error["type"] == "error", error
        assert (
            error["error"]["code"] == "frame_too_large" and error["error"]["type"] == "invalid_request_error"
        )
        assert str(MAX_FRAME) in error["error"]["message"]
        # A multi-byte text counts its UTF-8 bytes, not its characters.
        accented = _item("é" * (MAX_FRAME // 2))
        assert len(accented) < MAX_FRAME < len(accented.encode()) < 2 * MAX_FRAME
        await ws.send(accented)
        assert (await _next(ws))["error"]["code"] == "frame_too_large"

        llm.push_text("Still here.")
        await ws.send(_item("hello"))
        added = await _until(ws, "conversation.item.done")
        assert added[-1]["item"]["content"][0]["text"] == "hello"
        await ws.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}}))
        done = (await _until(ws, "response.done"))[-1]
        assert done["response"]["status"] == "completed"
        assert done["response"]["output"][0]["content"][0]["text"] == "Still here."
        # The refused frames never reached the conversation: the brain saw only "hello".
        sent = json.dumps(llm.requests[-1]["messages"])
        assert "hello" in sent and "xxxx" not in sent and "éé" not in sent
    finally:
        await ws.close()


async def test_a_frame_over_the_transports_hard_cap_closes_1009(tight: PalaverServer) -> None:
    ws = await _open(tight)
    await ws.send(_item("x" * (2 * MAX_FRAME + 10)))  # palaver serve sets uvicorn's cap at 2x
    _, code = await _closed_code(ws)
    assert code == 1009


# ----------------------------------------------------------------------------- REST body cap


async def _rest(server: PalaverServer, content: Any, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        return await http.post(
            server.http_url + "/v1/realtime/calls/rtc_nosuchcall/accept",
            content=content,
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", **headers},
        )


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
    assert str(MAX_BODY) in error["message"]


async def test_a_rest_body_over_the_cap_gets_413(tight: PalaverServer) -> None:
    body = json.dumps({"type": "realtime", "instructions": "x" * (2 * MAX_BODY)}).encode()
    _assert_too_large(await _rest(tight, body))


async def test_a_chunked_rest_body_over_the_cap_gets_413(tight: PalaverServer) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "realtime", "instructions": "'
        for _ in range(6):
            yield b"x" * 1000
            await asyncio.sleep(0.01)
        yield b'"}'

    response = await _rest(tight, chunks())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    _assert_too_large(response)


async def test_a_rest_body_within_the_cap_reaches_the_route(tight: PalaverServer) -> None:
    response = await _rest(tight, json.dumps({"type": "realtime", "instructions": "x" * (MAX_BODY - 100)}))
    assert response.status_code == 404, response.text  # the route answered: no such call
    assert response.json()["error"]["code"] == "call_not_found"
