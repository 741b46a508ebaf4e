"""Webhooks as OpenAI sends them: ``realtime.call.incoming``, signed the Standard-Webhooks way.

The receiver checks the signature exactly as ``openai``'s ``client.webhooks.unwrap`` does:
headers ``webhook-id``, ``webhook-timestamp`` (unix seconds) and ``webhook-signature:
v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, the key being the base64 after
``whsec_`` (or, for a secret without that prefix, its UTF-8 bytes, as the SDK does).

A phone rings while we wait, so delivery is quick or not at all: a short timeout per attempt,
retries with exponential backoff on connection errors, timeouts, 5xx and 429 (another 4xx is
the receiver's considered answer and is not retried), a bounded number of attempts, and an
optional deadline after which no new attempt starts. Every attempt is logged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from palaver import __version__
from palaver.calls.call import Call
from palaver.config import ConfigError
from palaver.protocol.ids import new_id
from palaver.redact import scrub_urls, url_for_log

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a webhook secret: ``whsec_<base64>`` decoded, else the string's UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError("PALAVER_WEBHOOK_SECRET starts with whsec_ but the rest is not base64") from exc
    return secret.encode("utf-8")


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery attempt."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class WebhookEvent:
    """One event to deliver: the exact body bytes and the ``webhook-id`` kept across retries."""

    id: str
    type: str
    body: bytes
    webhook_id: str


def make_event(type: str, data: Mapping[str, Any], *, created_at: int | None = None) -> WebhookEvent:
    event_id = new_id("evt")
    payload = {
        "id": event_id,
        "object": "event",
        "created_at": int(time.time()) if created_at is None else created_at,
        "type": type,
        "data": dict(data),
    }
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return WebhookEvent(id=event_id, type=type, body=body, webhook_id=new_id("wh"))


def call_incoming_event(call: Call) -> WebhookEvent:
    """``realtime.call.incoming`` for ``call``, payload as OpenAI's."""
    headers = [{"name": h["name"], "value": h["value"]} for h in call.sip_headers]
    return make_event("realtime.call.incoming", {"call_id": call.id, "sip_headers": headers})


class WebhookSender:
    """Delivers events to one URL. ``deliver`` answers whether the receiver took it (2xx)."""

    def __init__(
        self,
        url: str,
        secret: str | None,
        *,
        attempts: int = 4,
        attempt_timeout: float = 3.0,
        backoff: float = 0.25,
        max_backoff: float = 2.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if attempts < 1:
            raise ConfigError("PALAVER_WEBHOOK_ATTEMPTS must be at least 1")
        self.url = url
        self._key = secret_key(secret) if secret else None
        self._attempts = attempts
        self._attempt_timeout = attempt_timeout
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self._own_client = client is None

    @property
    def signed(self) -> bool:
        return self._key is not None

    def headers(self, event: WebhookEvent, timestamp: int) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "user-agent": f"Palaver/{__version__} (webhooks)",
            "webhook-id": event.webhook_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._key is not None:
            headers["webhook-signature"] = sign(self._key, event.webhook_id, timestamp, event.body)
        return headers

    async def deliver(self, event: WebhookEvent, *, deadline: float | None = None) -> bool:
        """Send ``event`` until a 2xx, a non-retryable answer, the last attempt or ``deadline``
        (event-loop time): True when the receiver answered 2xx."""
        loop = asyncio.get_running_loop()
        for attempt in range(1, self._attempts + 1):
            started = loop.time()
            retry_after: float | None = None
            delivered = False
            try:
                async with asyncio.timeout(self._attempt_timeout):  # the whole attempt, not each read
                    response = await self._client.post(
                        self.url,
                        content=event.body,
                        headers=self.headers(event, int(time.time())),
                        timeout=self._attempt_timeout,
                    )
            except TimeoutError:
                outcome, retryable = f"no answer within {self._attempt_timeout:g} s", True
            except httpx.HTTPError as exc:
                outcome, retryable = f"failed: {type(exc).__name__}: {scrub_urls(str(exc))}", True
            else:
                status = response.status_code
                outcome = f"HTTP {status}"
                delivered = 200 <= status < 300
                retryable = status >= 500 or status == 429
                retry_after = _retry_after(response.headers.get("retry-after")) if status == 429 else None
            log.log(
                logging.INFO if delivered else logging.WARNING,
                "webhook %s %s attempt %d/%d to %s: %s in %.0f ms",
                event.type,
                event.id,
                attempt,
                self._attempts,
                url_for_log(self.url),
                outcome,
                (loop.time() - started) * 1000,
            )
            if delivered:
                return True
            if not retryable or attempt == self._attempts:
                break
            delay = min(self._max_backoff, self._backoff * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self._max_backoff))
            if deadline is not None and loop.time() + delay >= deadline:
                log.warning("webhook %s %s: no time left for another attempt", event.type, event.id)
                break
            await asyncio.sleep(delay)
        return False

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
