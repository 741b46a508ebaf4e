"""Palaver servers for the SIP end-to-end tests, and the webhook side that decides their calls.

    with hooked_server(scripted_llm, api_key=KEY, secret=SECRET) as (server, hook):
        hook.decide = accept_with(server, KEY, instructions="You take bookings.")
        ...   # SIPp/baresip/linphonec call server.sip_port; the webhook accepts with that config

Every server here talks to the scripted LLM, requires ``api_key``, and starts from a clean SIP
configuration whatever the developer's shell exports (no webhook, agents or credentials unless
given). Servers are stopped and their files removed when the block ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import openai

from tests.support.server import PalaverServer, running_server
from tests.support.webhook_receiver import WebhookReceiver

__all__ = ["PHONE_TURNS", "accept_with", "hooked_server", "scripted_server", "sip_env"]

#: A phone caller's pauses are not the end of the turn; and the caller's words are transcribed.
PHONE_TURNS: dict[str, Any] = {
    "input": {
        "transcription": {"model": "gpt-4o-mini-transcribe"},
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 800},
    }
}


def sip_env(scripted_llm: Any, *, api_key: str | None, **extra: str | None) -> dict[str, str | None]:
    return {
        "PALAVER_LLM_BASE_URL": scripted_llm.base_url,
        "PALAVER_LLM_MODEL": "scripted",
        "PALAVER_LLM_API_KEY": "sk-scripted",
        "PALAVER_API_KEY": api_key,
        "PALAVER_WEBHOOK_URL": None,
        "PALAVER_WEBHOOK_SECRET": None,
        "PALAVER_SIP_AGENTS": None,
        "PALAVER_SIP_CREDENTIALS": None,
        **extra,
    }


@contextlib.contextmanager
def scripted_server(
    scripted_llm: Any, *, api_key: str | None, **extra: str | None
) -> Iterator[PalaverServer]:
    """A started server on the scripted LLM (``extra``: more PALAVER_* settings)."""
    with running_server(sip_env(scripted_llm, api_key=api_key, **extra)) as server:
        yield server


@contextlib.contextmanager
def hooked_server(
    scripted_llm: Any, *, api_key: str, secret: str, **extra: str | None
) -> Iterator[tuple[PalaverServer, WebhookReceiver]]:
    """A server whose calls are announced to a webhook receiver (set ``hook.decide``)."""
    with (
        WebhookReceiver(secret) as hook,
        scripted_server(
            scripted_llm,
            api_key=api_key,
            PALAVER_WEBHOOK_URL=hook.url,
            PALAVER_WEBHOOK_SECRET=secret,
            **extra,
        ) as server,
    ):
        yield server, hook


def accept_with(server: PalaverServer, api_key: str, **config: Any) -> Callable[[Any], None]:
    """A webhook decision: accept every call through the REST API (the stock SDK) with ``config``."""

    def accept(event: Any) -> None:
        with openai.OpenAI(api_key=api_key, base_url=server.http_url + "/v1", max_retries=0) as client:
            client.realtime.calls.accept(event.data.call_id, type="realtime", **config)

    return accept
