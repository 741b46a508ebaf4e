"""The decision flow: static agent at once, or webhook then REST, else the configured default."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.webhooks import RealtimeCallIncomingWebhookEvent

from palaver.backends.registry import Backends
from palaver.calls.agents import PHONE_INSTRUCTIONS
from palaver.calls.call import Call, CallState
from palaver.calls.switchboard import CallSettings, Switchboard
from palaver.config import ConfigError, Settings
from palaver.redact import configure, pii
from palaver.server.app import create_app
from tests.calls.fakes import FakeControl, serving
from tests.support.webhook_receiver import WebhookReceiver

WHSEC = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
HEADERS = [
    {"name": "From", "value": "<sip:alice@example.com>;tag=1"},
    {"name": "To", "value": "<sip:1000@pbx>"},
]


@pytest.fixture
async def boards() -> AsyncIterator[list[Switchboard]]:
    made: list[Switchboard] = []
    yield made
    for board in made:
        await board.aclose()


def board(boards: list[Switchboard], **settings: Any) -> Switchboard:
    made = Switchboard(CallSettings.from_settings(Settings(**settings)))
    boards.append(made)
    return made


def offer(switchboard: Switchboard, dialled: str = "1000") -> tuple[Call, FakeControl]:
    control = FakeControl()
    call = switchboard.new_call(control=control, sip_headers=[dict(h) for h in HEADERS], dialled=dialled)  # type: ignore[misc]
    control.call = call
    return call, control


async def test_without_a_webhook_the_static_agent_answers_at_once(boards) -> None:
    switchboard = board(boards)
    call, control = offer(switchboard)
    assert switchboard.get(call.id) is call
    assert await switchboard.offer(call) is CallState.ACCEPTED
    [(name, config)] = control.commands
    assert name == "accept" and config.instructions == PHONE_INSTRUCTIONS
    assert config.expires_at > 0


async def test_the_agent_is_chosen_by_the_dialled_number(boards, tmp_path: Path) -> None:
    path = tmp_path / "agents.json"
    path.write_text(json.dumps({"sales": {"instructions": "Sales."}, "default": {"instructions": "Desk."}}))
    switchboard = board(boards, sip_agents=str(path))
    for dialled, expected in (("sales", "Sales."), ("2000", "Desk.")):
        call, control = offer(switchboard, dialled)
        await switchboard.offer(call)
        assert control.commands[0][1].instructions == expected


async def test_no_agent_for_the_number_declines_404(boards, tmp_path: Path) -> None:
    path = tmp_path / "agents.json"
    path.write_text(json.dumps({"sales": {"instructions": "Sales."}}))
    switchboard = board(boards, sip_agents=str(path))
    call, control = offer(switchboard, "2000")
    assert await switchboard.offer(call) is CallState.REJECTED
    assert control.commands == [("reject", 404)]


async def test_webhook_taken_but_no_decision_in_time_applies_the_default(boards) -> None:
    with WebhookReceiver() as receiver:
        switchboard = board(boards, webhook_url=receiver.url, webhook_secret=WHSEC, sip_decision_seconds=0.2)
        call, control = offer(switchboard)
        assert await switchboard.offer(call) is CallState.ACCEPTED
    assert len(receiver.deliveries) == 1 and control.names() == ["accept"]


async def test_webhook_refused_applies_the_default_reject(boards) -> None:
    with WebhookReceiver(then=500) as receiver:
        switchboard = board(
            boards,
            webhook_url=receiver.url,
            webhook_secret=WHSEC,
            webhook_attempts=2,
            sip_default_action="reject",
            sip_decision_seconds=30,  # not waited for: the failed delivery decides
        )
        call, control = offer(switchboard)
        assert await switchboard.offer(call) is CallState.REJECTED
    assert len(receiver.deliveries) == 2 and control.commands == [("reject", 603)]


async def test_the_caller_giving_up_while_pending_ends_the_offer(boards) -> None:
    with WebhookReceiver() as receiver:
        switchboard = board(boards, webhook_url=receiver.url, sip_decision_seconds=30)
        call, control = offer(switchboard)
        task = asyncio.create_task(switchboard.offer(call))
        await asyncio.to_thread(receiver.arrived.wait, 10)
        call.mark_ended()  # CANCEL from the caller
        assert await task is CallState.ENDED
    assert control.commands == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sip_default_action": "ring"}, "PALAVER_SIP_DEFAULT_ACTION"),
        ({"sip_decision_seconds": 0}, "PALAVER_SIP_DECISION_SECONDS"),
        ({"webhook_url": "ftp://example.com"}, "PALAVER_WEBHOOK_URL"),
        ({"webhook_url": "http://x", "webhook_secret": "whsec_***"}, "PALAVER_WEBHOOK_SECRET"),
        ({"webhook_attempts": 0}, "PALAVER_WEBHOOK_ATTEMPTS"),
    ],
)
def test_bad_call_settings_stop_startup(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CallSettings.from_settings(Settings(**settings))


def test_call_settings_come_from_the_environment() -> None:
    env = {
        "PALAVER_WEBHOOK_URL": "https://hooks.example.com/openai",
        "PALAVER_WEBHOOK_SECRET": WHSEC,
        "PALAVER_SIP_DECISION_SECONDS": "4.5",
        "PALAVER_SIP_DEFAULT_ACTION": "Reject",
    }
    settings = CallSettings.from_settings(Settings.from_env(env))
    assert settings.webhook_url == "https://hooks.example.com/openai" and settings.webhook_secret == WHSEC
    assert settings.decision_seconds == 4.5 and settings.default_action == "reject"


@pytest.mark.e2e
async def test_webhook_then_rest_accept_with_the_sdks(backends: Backends) -> None:
    """The whole flow as a customer runs it: verify with ``unwrap``, accept with ``calls.accept``."""
    with WebhookReceiver() as receiver:
        settings = Settings(
            api_key="sk-flow", stt="null", vad="energy", webhook_url=receiver.url, webhook_secret=WHSEC
        )
        app = create_app(settings, backends)
        async with serving(app) as url:
            switchboard: Switchboard = app.state.switchboard
            call, control = offer(switchboard)
            decision = asyncio.create_task(switchboard.offer(call))
            assert await asyncio.to_thread(receiver.arrived.wait, 10)
            delivery = receiver.deliveries[0]
            event = openai.OpenAI(api_key="x", webhook_secret=WHSEC).webhooks.unwrap(
                delivery.body, delivery.headers
            )
            assert isinstance(event, RealtimeCallIncomingWebhookEvent)
            assert event.data.call_id == call.id
            assert {h.name: h.value for h in event.data.sip_headers}["To"] == "<sip:1000@pbx>"
            client = AsyncOpenAI(api_key="sk-flow", base_url=url + "/v1", max_retries=0)
            try:
                await client.realtime.calls.accept(
                    event.data.call_id, type="realtime", instructions="Webhook says hi."
                )
            finally:
                await client.close()
            assert await decision is CallState.ACCEPTED
    assert control.names() == ["accept"]
    assert control.commands[0][1].instructions == "Webhook says hi."


@pytest.mark.parametrize("shown", [False, True], ids=["default", "log-pii"])
async def test_the_incoming_line_names_the_numbers_only_with_log_pii(
    boards, caplog: pytest.LogCaptureFixture, shown: bool
) -> None:
    switchboard = board(boards)
    headers = [{"name": "From", "value": '"Bob" <sip:+14155550199@pbx.example>;tag=9'}]
    configure(log_pii=shown)
    try:
        with caplog.at_level(logging.INFO, logger="palaver.calls.switchboard"):
            call = switchboard.new_call(control=FakeControl(), sip_headers=headers, dialled="+14155550123")  # type: ignore[arg-type]
            await switchboard.apply_default(call, "no webhook configured")
    finally:
        configure(log_pii=False)
    text = caplog.text
    if shown:
        assert f"call {call.id} incoming to '+14155550123' from '+14155550199'" in text
    else:
        assert "4155550123" not in text and "4155550199" not in text
        assert f"call {call.id} incoming to '{pii('+14155550123')}' from '{pii('+14155550199')}'" in text
    assert "accepting with agent 'default'" in text  # the default agent is no one's number
