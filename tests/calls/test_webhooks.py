"""Webhook signing and delivery, checked with the stock ``openai`` SDK against a real local receiver."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time

import httpx
import openai
import pytest
from openai.types.webhooks import RealtimeCallIncomingWebhookEvent

from palaver.calls.call import Call
from palaver.calls.webhooks import WebhookSender, call_incoming_event, secret_key, sign
from palaver.config import ConfigError
from tests.calls.fakes import FakeControl
from tests.support.server import free_port
from tests.support.webhook_receiver import DROP, WebhookReceiver

WHSEC = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
HEADERS = [
    {"name": "From", "value": '"Alice" <sip:alice@example.com>;tag=9fxced76sl'},
    {"name": "To", "value": "<sip:+14155550123@palaver.local>"},
    {"name": "Call-ID", "value": "3848276298220188511@atlanta.example.com"},
    {"name": "X-Custom", "value": "ünïcode ok"},
]


def make_call() -> Call:
    return Call(control=FakeControl(), sip_headers=[dict(h) for h in HEADERS], dialled="+14155550123")  # type: ignore[arg-type,misc]


def unwrap(secret: str, body: bytes, headers: dict[str, str]) -> object:
    return openai.OpenAI(api_key="x", webhook_secret=secret).webhooks.unwrap(body, headers)


@pytest.mark.parametrize("secret", [WHSEC, "a plain shared secret"], ids=["whsec", "plain"])
def test_the_signature_is_what_the_openai_sdk_verifies(secret: str) -> None:
    call = make_call()
    event = call_incoming_event(call)
    sender = WebhookSender("http://127.0.0.1:9/", secret)
    headers = sender.headers(event, int(time.time()))
    parsed = unwrap(secret, event.body, headers)
    assert isinstance(parsed, RealtimeCallIncomingWebhookEvent)
    assert parsed.data.call_id == call.id
    assert [(h.name, h.value) for h in parsed.data.sip_headers] == [(h["name"], h["value"]) for h in HEADERS]
    with pytest.raises(openai.InvalidWebhookSignatureError):
        unwrap(WHSEC if secret != WHSEC else "another secret", event.body, headers)


def test_payload_is_exactly_openais_shape() -> None:
    call = make_call()
    event = call_incoming_event(call)
    payload = json.loads(event.body)
    assert set(payload) == {"id", "object", "created_at", "type", "data"}
    assert payload["id"].startswith("evt_") and payload["id"] == event.id
    assert payload["object"] == "event" and payload["type"] == "realtime.call.incoming"
    assert isinstance(payload["created_at"], int)
    assert payload["data"] == {"call_id": call.id, "sip_headers": HEADERS}


def test_sign_matches_the_standard_webhooks_example() -> None:
    # The example of the Standard Webhooks specification (its test vector).
    key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_a_malformed_whsec_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="PALAVER_WEBHOOK_SECRET"):
        secret_key("whsec_not*base64!")


async def test_delivery_retries_connection_errors_5xx_and_429_until_accepted(caplog) -> None:
    caplog.set_level(logging.INFO, logger="palaver.calls.webhooks")
    call = make_call()
    with WebhookReceiver(script=[DROP, 503, 429, 202]) as receiver:
        sender = WebhookSender(receiver.url, WHSEC, attempts=5, backoff=0.01, attempt_timeout=5)
        try:
            assert await sender.deliver(call_incoming_event(call)) is True
        finally:
            await sender.aclose()
    assert len(receiver.deliveries) == 4
    ids = {d.headers["webhook-id"] for d in receiver.deliveries}
    assert len(ids) == 1 and ids.pop().startswith("wh_")  # the same message id across retries
    for delivery in receiver.deliveries:  # every attempt is signed and verifies on its own
        assert delivery.headers["content-type"] == "application/json"
        event = unwrap(WHSEC, delivery.body, delivery.headers)
        assert isinstance(event, RealtimeCallIncomingWebhookEvent) and event.data.call_id == call.id
    attempts = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert len(attempts) == 4 and "attempt 4/5" in attempts[-1] and "HTTP 202" in attempts[-1]


async def test_another_4xx_is_not_retried() -> None:
    with WebhookReceiver(script=[400]) as receiver:
        sender = WebhookSender(receiver.url, WHSEC, attempts=5, backoff=0.01)
        try:
            assert await sender.deliver(call_incoming_event(make_call())) is False
        finally:
            await sender.aclose()
    assert len(receiver.deliveries) == 1


async def test_attempts_are_bounded() -> None:
    with WebhookReceiver(then=500) as receiver:
        sender = WebhookSender(receiver.url, WHSEC, attempts=3, backoff=0.01)
        try:
            assert await sender.deliver(call_incoming_event(make_call())) is False
        finally:
            await sender.aclose()
    assert len(receiver.deliveries) == 3


async def test_no_new_attempt_starts_past_the_deadline() -> None:
    with WebhookReceiver(then=503) as receiver:
        sender = WebhookSender(receiver.url, WHSEC, attempts=10, backoff=1.0)
        try:
            deadline = asyncio.get_running_loop().time()  # already passed: the first try only
            assert await sender.deliver(call_incoming_event(make_call()), deadline=deadline) is False
        finally:
            await sender.aclose()
    assert len(receiver.deliveries) == 1


async def test_nobody_listening_is_retried_then_given_up() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    attempts: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        attempts.append(request)

    client = httpx.AsyncClient(event_hooks={"request": [record]})
    sender = WebhookSender(url, None, attempts=3, backoff=0.01, client=client)
    try:
        assert await sender.deliver(call_incoming_event(make_call())) is False
    finally:
        await client.aclose()
    assert len(attempts) == 3
    assert "webhook-signature" not in attempts[0].headers and "webhook-id" in attempts[0].headers
