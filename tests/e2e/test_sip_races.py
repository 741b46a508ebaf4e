"""REST call control against a call the caller has just ended, end to end (SIPp + ``palaver serve``).

The caller CANCELs right after the 180 while the webhook's receiver has not decided, or BYEs
right after its ACK; then the REST commands come (the stock ``openai`` SDK). Each must get
OpenAI's 409 ``call_ended`` (never a 500), the call must be gone (a sideband gets 404), and the
server log must hold no traceback and no "Task exception was never retrieved".

The exact window (the UA has taken the BYE/CANCEL, the gateway has not handled it yet) is one
step of the event loop and cannot be hit from outside reliably: tests/calls/test_sip_gateway_races.py
hits it deterministically with the real gateway and a fake transport. These tests pin the
contract on the real server and peers.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.call_watch import call_id_from_log, rest_client
from tests.support.server import PalaverServer
from tests.support.sip_peers import SCENARIOS, require_binary, run_sipp_async
from tests.support.sip_server import accept_with, hooked_server
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

API_KEY = "sk-palaver-sip-races"
SECRET = "whsec_" + base64.b64encode(b"palaver-sip-races-secret-32byte!").decode()
CALL_TIMEOUT = 40.0
BAD_LOG_LINES = (
    "Task exception was never retrieved",
    "Traceback",
    "call_control_failed",
    "failed in the transport",
)


@pytest.fixture(scope="module")
def hooked(scripted_llm: Any) -> Iterator[tuple[PalaverServer, WebhookReceiver]]:
    require_binary("sipp")
    # PALAVER_LOG_PII: the test reads the call's id in the "incoming to '<dialled>'" line.
    with hooked_server(
        scripted_llm,
        api_key=API_KEY,
        secret=SECRET,
        PALAVER_LOG_PII="true",
        PALAVER_SIP_DECISION_SECONDS="30",
    ) as (server, hook):
        yield server, hook


async def sideband_status(server: PalaverServer, call_id: str) -> int | None:
    async with rest_client(server, API_KEY) as client:
        try:
            conn = await client.realtime.connect(call_id=call_id, max_retries=0).enter()
        except Exception as exc:
            response = getattr(exc, "response", None)
            return getattr(response, "status_code", None) or getattr(exc, "status_code", None)
        await conn.close()
        return 101


async def conflict_code(command: Any) -> str | None:
    with pytest.raises(openai.ConflictError) as refused:
        await command
    return refused.value.code


async def ended_in_log(server: PalaverServer, call_id: str, since: int) -> None:
    async with asyncio.timeout(10):
        while f"call {call_id} ended" not in server.stderr_text()[since:]:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def assert_clean_log(server: PalaverServer, since: int) -> None:
    log = server.stderr_text()[since:]
    assert not [line for line in log.splitlines() if any(bad in line for bad in BAD_LOG_LINES)], log


async def test_rest_commands_after_the_callers_cancel_get_409_and_the_call_is_gone(
    hooked: tuple[PalaverServer, WebhookReceiver], tmp_path: Path
) -> None:
    server, hook = hooked
    hook.decide = None  # the receiver takes the event and decides nothing: the call stays pending
    since = len(server.stderr_text())
    result = await run_sipp_async(
        SCENARIOS / "uac_cancel.xml",
        f"127.0.0.1:{server.sip_port}",
        workdir=tmp_path / "sipp",
        service="gives-up",
        timeout_s=CALL_TIMEOUT,
    )
    assert result.ok, result.describe()
    call_id = await call_id_from_log(server, "gives-up", since=since)
    await ended_in_log(server, call_id, since)
    async with rest_client(server, API_KEY) as client:
        assert await conflict_code(client.realtime.calls.accept(call_id, type="realtime")) == "call_ended"
        assert await conflict_code(client.realtime.calls.reject(call_id, status_code=486)) == "call_ended"
        assert await conflict_code(client.realtime.calls.hangup(call_id)) == "call_ended"
    assert await sideband_status(server, call_id) == 404
    assert_clean_log(server, since)


async def test_rest_commands_after_the_callers_bye_get_409_and_the_call_is_gone(
    hooked: tuple[PalaverServer, WebhookReceiver], tmp_path: Path
) -> None:
    server, hook = hooked
    hook.decide = accept_with(server, API_KEY, instructions="You answer and get hung up on.")
    since = len(server.stderr_text())
    result = await run_sipp_async(
        SCENARIOS / "uac_bye_at_once.xml",
        f"127.0.0.1:{server.sip_port}",
        workdir=tmp_path / "sipp",
        service="hangs-up",
        timeout_s=CALL_TIMEOUT,
    )
    assert result.ok, result.describe()
    assert hook.decision_errors == [], hook.decision_errors
    call_id = await call_id_from_log(server, "hangs-up", since=since)
    await ended_in_log(server, call_id, since)
    async with rest_client(server, API_KEY) as client:
        assert await conflict_code(client.realtime.calls.hangup(call_id)) == "call_ended"
        refer = client.realtime.calls.refer(call_id, target_uri="sip:agent2@127.0.0.1:5099")
        assert await conflict_code(refer) == "call_ended"
        assert await conflict_code(client.realtime.calls.accept(call_id, type="realtime")) == "call_ended"
    assert await sideband_status(server, call_id) == 404
    assert_clean_log(server, since)
