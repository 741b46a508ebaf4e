"""What ``palaver serve`` writes to its log about a phone call, and what a client is told of a failure.

A SIPp caller with a phone number dials a phone number; the static agent for that number has a
function tool, and the operator's tool policy refuses the call the brain makes with a third
phone number in its arguments (a refusal is logged with the arguments); the caller presses a
key. At the default level none of those numbers, nor the key, is in the server's log; with
``PALAVER_LOG_PII=true`` the same call's log shows every one of them (so the first half can fail).

A backend failure (the LLM answering 500, an LLM that refuses connections) gives the client a
generic message with an error id, never the exception's text; the log has the id beside it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.realtime_client import collect_until, connect, of_type
from tests.support.call_watch import sideband
from tests.support.server import PalaverServer, free_port, running_server
from tests.support.sip_peers import SCENARIOS, SippProcess, require_binary, wav_to_rtp_pcap, write_wav
from tests.support.sip_server import scripted_server
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

API_KEY = "sk-palaver-privacy-test"
#: The number SIPp dials (the Request-URI's user), the caller's (From), the one in the tool's arguments.
DIALLED = "+14155550123"
CALLER = "+14155550199"
IN_ARGUMENTS = "+14155550177"
DIGIT = "7"
WEBHOOK_TOKEN = "whtok-e2e-0451"
ANSWER = "I cannot transfer you to that number."
TOOL = {
    "type": "function",
    "name": "transfer_call",
    "description": "Transfer the caller to a phone number",
    "parameters": {"type": "object", "properties": {"number": {"type": "string"}}, "required": ["number"]},
}
#: Transfers only to toll-free numbers: the brain's call to IN_ARGUMENTS is refused, and logged.
POLICY = {"tool": [{"name": "transfer_call", "arguments": {"number": {"pattern": r"\+1800[0-9]{7}"}}}]}
CALL_SECONDS = 60
#: What a client is told of a failure it did not cause.
GENERIC = re.compile(r"The response failed because of a server error \(error id (err_[0-9a-f]{12})\)\.")


@pytest.fixture(scope="module")
def call_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The agents and policy files, one second of silent PCMA, and SIPp's scenario with a caller
    number in From (uac_speech.xml: INVITE, silence, a pause, the digit, BYE)."""
    folder = tmp_path_factory.mktemp("privacy")
    agents = folder / "agents.json"
    agents.write_text(json.dumps({DIALLED.removeprefix("+"): {"instructions": "A line.", "tools": [TOOL]}}))
    policy = folder / "policy.json"
    policy.write_text(json.dumps(POLICY))
    wav = write_wav(folder / "silence.wav", b"\0\0" * 8000)
    wav_to_rtp_pcap(wav, folder / "silence.pcap")
    text = (SCENARIOS / "uac_speech.xml").read_text(encoding="iso-8859-1")
    assert text.count("sipp <sip:sipp@") >= 3  # INVITE, ACK, BYE
    scenario = folder / "uac_caller_number.xml"
    scenario.write_text(text.replace("sipp <sip:sipp@", f'"A caller" <sip:{CALLER}@'), encoding="iso-8859-1")
    return {"agents": agents, "policy": policy, "silence": folder / "silence.pcap", "scenario": scenario}


@pytest.fixture(params=[False, True], ids=["default", "log-pii"])
def phone_server(
    request: pytest.FixtureRequest, scripted_llm: Any, call_files: dict[str, Path]
) -> Iterator[PalaverServer]:
    """The call is announced to a webhook whose URL carries a token; nobody decides, so after a
    second the static agent of the dialled number answers."""
    require_binary("sipp")
    with (
        WebhookReceiver() as hook,
        scripted_server(
            scripted_llm,
            api_key=API_KEY,
            PALAVER_WEBHOOK_URL=f"{hook.url}?token={WEBHOOK_TOKEN}",
            PALAVER_SIP_DECISION_SECONDS="1",
            PALAVER_SIP_AGENTS=str(call_files["agents"]),
            PALAVER_TOOL_POLICY=str(call_files["policy"]),
            PALAVER_LOG_PII="true" if request.param else None,
            PALAVER_LOG_LEVEL=None,  # the default level, whatever the developer's shell says
            PALAVER_STT="null",
            PALAVER_VAD="energy",
        ) as server,
    ):
        yield server


async def _call_id(server: PalaverServer, since: int) -> str:
    """The id of the one call the server logged (its dialled number may be redacted)."""
    async with asyncio.timeout(20):
        while True:
            found = re.search(r"call (rtc_\w+) incoming to ", server.stderr_text()[since:])
            if found is not None:
                return found.group(1)
            await asyncio.sleep(0.05)


async def test_a_phone_call_leaves_no_personal_data_in_the_default_log(
    phone_server: PalaverServer, llm: Any, call_files: dict[str, Path], tmp_path: Path
) -> None:
    server = phone_server
    shown = server.env.get("PALAVER_LOG_PII") == "true"
    llm.push_tool_call("transfer_call", {"number": IN_ARGUMENTS})
    llm.push_text(ANSWER)  # after the refusal, the brain tells the caller
    mark = len(server.stderr_text())
    events: list[Any] = []
    with SippProcess(
        call_files["scenario"],
        f"127.0.0.1:{server.sip_port}",
        workdir=tmp_path / "sipp",
        pcaps={"speech.pcap": call_files["silence"]},
        dtmf=DIGIT,
        service=DIALLED,
        duration_ms=5000,  # the sideband's turn happens in this pause, then the digit, then BYE
        timeout_s=CALL_SECONDS,
    ) as sipp:
        call_id = await _call_id(server, mark)
        async with asyncio.timeout(CALL_SECONDS), sideband(server, call_id, api_key=API_KEY) as conn:
            await conn.response.create()
            async for event in conn:  # until the caller's BYE closes the sideband
                events.append(event)
        result = await sipp.wait_async()
    assert result.ok, result.describe()

    # The call went as planned: the agent's tool, the policy's refusal, the answer, the key press.
    types = [e.type for e in events]
    (arguments,) = of_type(events, "response.function_call_arguments.done")
    assert arguments.name == "transfer_call" and json.loads(arguments.arguments) == {"number": IN_ARGUMENTS}
    done = of_type(events, "response.done")
    assert done and done[0].response.status == "completed", types
    assert [e.event for e in of_type(events, "input_audio_buffer.dtmf_event_received")] == [DIGIT], types
    log = server.stderr_text()[mark:]
    assert f"call {call_id} ended: bye" in log

    numbers = [n.removeprefix("+") for n in (DIALLED, CALLER, IN_ARGUMENTS)]
    digit_lines = re.findall(rf"call {call_id}: DTMF (\S+) received", log)
    assert len(digit_lines) == 1, log[-3000:]
    assert "tool call blocked: tool=transfer_call reason=argument_not_allowed" in log, log[-3000:]
    hook_url = r"http://127\.0\.0\.1:\d+/webhook\?"
    assert re.search(rf"webhook realtime\.call\.incoming \S+ attempt 1/\d+ to {hook_url}", log), log
    if not shown:
        leaked = [n for n in [*numbers, WEBHOOK_TOKEN] if n in log]
        assert leaked == [], log
        assert re.search(rf"HTTP Request: POST {hook_url}<pii:", log), log  # httpx's own line
        assert re.fullmatch(r"<pii:[0-9a-f]{8}>", digit_lines[0]), digit_lines
        assert "incoming to '<pii:" in log and "from '<pii:" in log
    else:  # the same call with PALAVER_LOG_PII=true: every value the default hid is there
        assert f"call {call_id} incoming to '{DIALLED}' from '{CALLER}'" in log, log[-3000:]
        assert f"no decision within 1 s; accepting with agent '{DIALLED.removeprefix('+')}'" in log
        assert IN_ARGUMENTS in log  # the policy's refusal quotes the argument
        assert f"/webhook?token={WEBHOOK_TOKEN}" in log
        assert digit_lines == [DIGIT]


async def test_an_llm_error_gives_the_client_an_error_id_not_its_text(palaver_server, llm) -> None:
    mark = len(palaver_server.stderr_text())
    async with connect(palaver_server, output_modalities=["text"]) as conn:
        llm.push_error(status=500, message="model crashed in /srv/llm/worker.py (gpu 3)")
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        )
        await conn.response.create()
        events = await collect_until(conn, "response.done")
    response = events[-1].response
    assert response.status == "failed" and response.status_details.error is not None
    error = response.status_details.error
    assert error.type == "server_error" and error.code == "llm_http_error"
    found = GENERIC.fullmatch(error.message or "")
    assert found is not None, error
    # The log has the id, beside the exception the client was not shown.
    log = await _log_with(palaver_server, found.group(1), since=mark)
    after = log[log.index(found.group(1)) :]
    assert "model crashed in /srv/llm/worker.py" in after[:4000]


async def test_an_unreachable_llm_gives_the_client_an_error_id(scripted_llm: Any) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    env = {"PALAVER_LLM_BASE_URL": closed, "PALAVER_LLM_MODEL": "any", "PALAVER_API_KEY": None}
    with running_server(env) as server:
        async with connect(server, output_modalities=["text"]) as conn:
            await conn.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
            )
            await conn.response.create()
            events = await collect_until(conn, "response.done", timeout=60)
        error = events[-1].response.status_details.error
        assert events[-1].response.status == "failed" and error is not None
        assert error.code == "llm_unreachable"
        found = GENERIC.fullmatch(error.message or "")
        assert found is not None, error  # not "Connection error." nor the endpoint's URL
        assert "127.0.0.1" not in (error.message or "")
        await _log_with(server, found.group(1), since=0)


async def test_uvicorn_lines_do_not_carry_query_strings(palaver_server) -> None:
    mark = len(palaver_server.stderr_text())
    async with httpx.AsyncClient(base_url=palaver_server.http_url) as http:
        await http.get("/v1/models", params={"api_key": "sk-in-a-query-string"})
    async with connect(palaver_server, output_modalities=["text"]):  # the SDK's ?model=gpt-realtime
        pass
    log = await _log_with(palaver_server, '"WebSocket /v1/realtime?<pii:', since=mark)
    assert '"GET /v1/models?<pii:' in log, log
    assert "sk-in-a-query-string" not in log and "model=gpt-realtime" not in log, log


async def _log_with(server: PalaverServer, text: str, *, since: int, timeout: float = 10.0) -> str:
    """The server's log from ``since`` once it contains ``text`` (bounded)."""
    async with asyncio.timeout(timeout):
        while True:
            log = server.stderr_text()[since:]
            if text in log:
                return log
            await asyncio.sleep(0.05)
