"""Where incoming calls are decided: a webhook and REST, or a static agent at once.

The transport (SIP bridge) registers each incoming call and offers it::

    call = switchboard.new_call(control=my_control, sip_headers=[...], dialled="1000")
    state = await switchboard.offer(call)   # returns once the call is decided (or over)

With ``PALAVER_WEBHOOK_URL`` the switchboard sends ``realtime.call.incoming`` and waits up to
``PALAVER_SIP_DECISION_SECONDS`` for a REST command; when the webhook could not be delivered (or
was answered with a non-2xx) or no decision came in time, ``PALAVER_SIP_DEFAULT_ACTION`` applies:
``accept`` with the static agent for the dialled number, or ``reject`` (603). Without a webhook
URL the static agent answers at once. Every decision reaches the transport through
``call.control`` (``accept(config)`` / ``reject(status)``), whoever made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

from palaver.calls.agents import DEFAULT_AGENT, Agents, load_agents
from palaver.calls.call import Call, CallControl, CallState, CallStateError, SipHeader
from palaver.calls.fanout import EventFanout
from palaver.calls.registry import CallRegistry
from palaver.calls.webhooks import WebhookSender, call_incoming_event, secret_key
from palaver.config import ConfigError, Settings
from palaver.redact import pii
from palaver.sip.errors import SipParseError
from palaver.sip.headers import parse_name_addr
from palaver.sip.uri import SipURI, TelURI
from palaver.transports.wire_log import WireLog

log = logging.getLogger(__name__)

DefaultAction = Literal["accept", "reject"]
#: SIP status when the default is to reject, and when no agent serves the dialled number.
DEFAULT_ACTION_REJECT_STATUS = 603
NO_AGENT_STATUS = 404


@dataclass(frozen=True)
class CallSettings:
    """The call-handling settings, checked: build it at startup so mistakes stop the server."""

    agents: Agents
    default_action: DefaultAction
    decision_seconds: float
    session_max_seconds: float
    webhook_url: str | None
    webhook_secret: str | None
    webhook_attempts: int
    webhook_attempt_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> CallSettings:
        action = settings.sip_default_action.strip().lower()
        if action not in ("accept", "reject"):
            raise ConfigError(
                f"PALAVER_SIP_DEFAULT_ACTION={settings.sip_default_action!r}: use accept or reject"
            )
        if settings.sip_decision_seconds <= 0:
            raise ConfigError("PALAVER_SIP_DECISION_SECONDS must be positive")
        if settings.webhook_attempts < 1:
            raise ConfigError("PALAVER_WEBHOOK_ATTEMPTS must be at least 1")
        if settings.webhook_attempt_seconds <= 0:
            raise ConfigError("PALAVER_WEBHOOK_ATTEMPT_SECONDS must be positive")
        if settings.webhook_secret:
            secret_key(settings.webhook_secret)  # raises on a malformed whsec_
        url = settings.webhook_url or None
        if url is not None and not url.startswith(("http://", "https://")):
            raise ConfigError(f"PALAVER_WEBHOOK_URL={url!r} must be an http:// or https:// URL")
        return cls(
            agents=load_agents(settings.sip_agents),
            default_action="accept" if action == "accept" else "reject",
            decision_seconds=settings.sip_decision_seconds,
            session_max_seconds=settings.session_max_seconds,
            webhook_url=url,
            webhook_secret=settings.webhook_secret or None,
            webhook_attempts=settings.webhook_attempts,
            webhook_attempt_seconds=settings.webhook_attempt_seconds,
        )


class Switchboard:
    def __init__(
        self,
        settings: CallSettings,
        *,
        registry: CallRegistry | None = None,
        webhooks: WebhookSender | None = None,
        wire_log: WireLog | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CallRegistry()
        if webhooks is None and settings.webhook_url is not None:
            webhooks = WebhookSender(
                settings.webhook_url,
                settings.webhook_secret,
                attempts=settings.webhook_attempts,
                attempt_timeout=settings.webhook_attempt_seconds,
            )
        self.webhooks = webhooks
        self._wire_log = wire_log
        if webhooks is not None and not webhooks.signed:
            log.warning("PALAVER_WEBHOOK_URL without PALAVER_WEBHOOK_SECRET: webhooks are sent unsigned")

    def new_call(self, *, control: CallControl, sip_headers: list[SipHeader], dialled: str = "") -> Call:
        """Create and register a pending call (its events fan out to sidebands, wire-logged once)."""
        call = Call(
            control=control, sip_headers=sip_headers, dialled=dialled, fanout=EventFanout(self._wire_log)
        )
        self.registry.register(call)
        log.info("call %s incoming to %r from %r", call.id, pii(dialled), pii(_caller(sip_headers)))
        return call

    def get(self, call_id: str) -> Call | None:
        return self.registry.get(call_id)

    async def offer(self, call: Call) -> CallState:
        """Decide ``call``: the webhook and REST, else the default. Returns the state it reached."""
        if self.webhooks is None:
            await self.apply_default(call, "no webhook configured")
            return call.state
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.decision_seconds
        delivery = asyncio.create_task(self._announce(call, deadline), name=f"webhook-{call.id}")
        decided = asyncio.create_task(call.wait_decided(), name=f"decision-{call.id}")
        reason = f"no decision within {self.settings.decision_seconds:g} s"
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.wait({delivery, decided}, return_when=asyncio.FIRST_COMPLETED)
                if not decided.done() and not delivery.result():
                    reason = "the webhook was not delivered"
                else:
                    await decided
        except TimeoutError:
            pass
        finally:
            for task in (delivery, decided):
                task.cancel()
            for task in (delivery, decided):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if call.state is CallState.PENDING:
            await self.apply_default(call, reason)
        return call.state

    async def _announce(self, call: Call, deadline: float) -> bool:
        assert self.webhooks is not None
        try:
            return await self.webhooks.deliver(call_incoming_event(call), deadline=deadline)
        except Exception:
            log.exception("call %s: the webhook could not be sent", call.id)
            return False

    async def apply_default(self, call: Call, reason: str) -> None:
        """Apply ``PALAVER_SIP_DEFAULT_ACTION`` to a pending call (a no-op if it got decided meanwhile)."""
        try:
            if self.settings.default_action == "reject":
                log.info("call %s: %s; rejecting (default action)", call.id, reason)
                await call.reject(DEFAULT_ACTION_REJECT_STATUS)
                return
            agent = self.settings.agents.match(call.dialled)
            if agent is None:
                log.warning("call %s: %s and no agent for %r; rejecting", call.id, reason, pii(call.dialled))
                await call.reject(NO_AGENT_STATUS)
                return
            log.info("call %s: %s; accepting with agent %r", call.id, reason, _agent_for_log(agent.name))
            await call.accept(agent.session_config(max_seconds=self.settings.session_max_seconds))
        except CallStateError as exc:
            log.info("call %s: default action not applied: %s", call.id, exc.message)
        except Exception:
            log.exception("call %s: the default action failed", call.id)

    async def aclose(self) -> None:
        self.registry.close()
        if self.webhooks is not None:
            await self.webhooks.aclose()


def _agent_for_log(name: str) -> str:
    """An agent is named by the dialled number or user it answers (personal), or is the default."""
    return name if name == DEFAULT_AGENT else pii(name)


def _caller(sip_headers: list[SipHeader]) -> str:
    """Who calls: the user part (a number, mostly) of the From header's URI; "" when unreadable."""
    for header in sip_headers:
        if header["name"].lower() != "from":
            continue
        try:
            uri = parse_name_addr(header["value"]).uri
        except SipParseError:
            return ""
        if isinstance(uri, SipURI):
            return uri.user or ""
        return uri.number if isinstance(uri, TelURI) else ""
    return ""
