"""REST call control racing the caller's BYE or CANCEL, against the real SIP gateway.

The gateway runs with its real UA core, switchboard, call registry, REST routes (served by
uvicorn on 127.0.0.1) and RTP endpoint; only the SIP transport is a fake that keeps what the
UA sends. The window under test: the UA has taken the caller's CANCEL or BYE, and the gateway
has not handled its report yet (the report may still be queued in the UA, or dispatched with
the cleanup task not run yet). A REST command in that window must answer 409 ``call_ended``
(never 500) and the call must still be cleaned up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from palaver.backends.registry import Backends
from palaver.calls.call import Call, CallState, CallStateError
from palaver.calls.rest import calls_router
from palaver.calls.sip_gateway import SipCall, SipGateway
from palaver.calls.switchboard import CallSettings, Switchboard
from palaver.config import Settings
from palaver.protocol.session_config import new_realtime_session
from palaver.sip import Peer, Request, Response, TransportName
from palaver.sip.ua import UaConfig, UserAgent
from tests.calls.fakes import serving
from tests.sip.uapeer import ack_text, in_dialog_text, invite_text, sip, to_tag

KEY = "sk-palaver-race-test"
CALLER = Peer("udp", "127.0.0.1", 5070)
VIA = "127.0.0.1:5070"
OFFER = (
    b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 9 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)


class FakeTransport:
    """Stands in for ``SipTransport``: keeps what the UA sends instead of sending it."""

    def __init__(self) -> None:
        self.ua: UserAgent | None = None
        self.sent: list[Request | Response] = []

    @property
    def contacts(self) -> dict[TransportName, tuple[str, int]]:
        return {"udp": ("127.0.0.1", 5060)}

    def flush(self) -> None:
        assert self.ua is not None
        self.sent += [message for message, _ in self.ua.transmits()]

    async def close(self) -> None:
        return None


class HeldWebhooks:
    """A webhook sender whose receiver took the event and has not decided yet."""

    signed = True

    async def deliver(self, event: Any, *, deadline: float) -> bool:
        return True

    async def aclose(self) -> None:
        return None


@dataclass
class Line:
    gateway: SipGateway
    board: Switchboard
    transport: FakeTransport
    url: str
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def ua(self) -> UserAgent:
        assert self.gateway.ua is not None
        return self.gateway.ua

    def take(self, text: str, body: bytes = b"", *, report: bool = True) -> None:
        """The UA receives a message from the caller; ``report`` drains its events to the gateway."""
        message = sip(text, body)
        self.ua.receive(message, CALLER, asyncio.get_running_loop().time())
        self.transport.flush()
        if report:
            self.gateway._on_events()

    async def ringing_call(self) -> tuple[Call, SipCall]:
        self.take(invite_text(via_host=VIA), OFFER)
        [sip_call] = self.gateway._calls.values()
        for _ in range(200):
            if sip_call.call is not None and self.sent_statuses()[-1:] == [180]:
                return sip_call.call, sip_call
            await asyncio.sleep(0.01)
        raise AssertionError(f"no 180 Ringing; sent {self.sent_statuses()}")

    async def confirmed_call(self) -> tuple[Call, SipCall]:
        call, sip_call = await self.ringing_call()
        answer = await self.post(call, "accept", json={"type": "realtime"})
        assert answer.status_code == 200, answer.text
        ok = self.transport.sent[-1]
        assert isinstance(ok, Response) and ok.status == 200
        self.take(ack_text(ok).replace("192.0.2.10:5070", VIA))
        assert call.live
        return call, sip_call

    def invite_answers(self) -> list[int]:
        """The statuses sent in answer to the INVITE (100 Trying excepted: the transaction's)."""
        return [
            m.status
            for m in self.transport.sent
            if isinstance(m, Response) and (m.headers.get("CSeq") or "").endswith("INVITE") and m.status > 100
        ]

    def sent_statuses(self) -> list[int | str]:
        return [m.status if isinstance(m, Response) else m.method for m in self.transport.sent]

    async def post(self, call: Call, action: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            headers = {"Authorization": f"Bearer {KEY}"}
            return await http.post(f"/v1/realtime/calls/{call.id}/{action}", headers=headers, **kwargs)


@pytest.fixture
async def line(backends: Backends) -> AsyncIterator[Line]:
    settings = Settings(api_key=KEY, stt="null", vad="energy", rtp_timeout_seconds=0)
    board = Switchboard(CallSettings.from_settings(settings), webhooks=HeldWebhooks())  # type: ignore[arg-type]
    transport = FakeTransport()
    gateway = SipGateway(settings, backends, board)
    gateway.transport = transport  # type: ignore[assignment]
    gateway.ua = transport.ua = UserAgent(UaConfig(contacts=transport.contacts))
    app = FastAPI()
    app.include_router(calls_router(lambda: board, KEY))
    async with serving(app) as url:
        try:
            yield Line(gateway, board, transport, url)
        finally:
            await gateway.close()


async def cleaned_up(line: Line, call: Call, sip_call: SipCall) -> None:
    """The call is over everywhere: not live, gone from the gateway, its media and session closed."""
    async with asyncio.timeout(5):
        await call.ended.wait()
        while line.gateway._calls or line.gateway._tasks:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.01)
    assert call.over and not call.live
    assert sip_call.endpoint is None and sip_call.session is None
    assert line.ua.calls() == []


def cancel_text(call: Call) -> str:
    return invite_text(via_host=VIA).replace("INVITE sip:", "CANCEL sip:").replace("1 INVITE", "1 CANCEL")


def bye_text(sip_call: SipCall, line: Line) -> str:
    ok = next(m for m in line.transport.sent if isinstance(m, Response) and m.status == 200)
    return in_dialog_text("BYE", to_tag(ok), via_host=VIA, branch="z9hG4bK-bye")


@pytest.mark.parametrize("action", ["accept", "reject", "hangup"])
async def test_a_rest_command_after_the_ua_took_a_cancel_answers_409_and_the_call_is_cleaned_up(
    line: Line, action: str
) -> None:
    call, sip_call = await line.ringing_call()
    line.take(cancel_text(call), report=False)  # the UA answered 487; its report is still queued
    assert line.invite_answers() == [180, 487]
    answer = await line.post(call, action, json={"type": "realtime"} if action == "accept" else {})
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "call_ended"
    await cleaned_up(line, call, sip_call)  # without the UA's report: the 409 scheduled the cleanup
    assert line.invite_answers() == [180, 487]  # no other answer after the CANCEL
    line.gateway._on_events()  # the late report changes nothing
    await cleaned_up(line, call, sip_call)


@pytest.mark.parametrize("action", ["hangup", "refer"])
async def test_a_rest_command_after_the_ua_took_a_bye_answers_409_and_the_call_is_cleaned_up(
    line: Line, action: str
) -> None:
    call, sip_call = await line.confirmed_call()
    line.take(bye_text(sip_call, line), report=False)
    assert line.sent_statuses()[-1] == 200  # the BYE's 200
    body = {"target_uri": "tel:+14155550123"} if action == "refer" else {}
    answer = await line.post(call, action, json=body)
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "call_ended"
    await cleaned_up(line, call, sip_call)
    assert "BYE" not in line.sent_statuses() and "REFER" not in line.sent_statuses()


Command = Callable[[Call], Any]
CONFIG = new_realtime_session("gpt-realtime", expires_at=0, overrides={"type": "realtime"}, prefix="")
PENDING_COMMANDS: dict[str, Command] = {
    "accept": lambda call: call.accept(CONFIG),
    "reject": lambda call: call.reject(486),
    "hangup": lambda call: call.hangup(),
}


@pytest.mark.parametrize("action", sorted(PENDING_COMMANDS))
async def test_a_command_between_the_cancel_report_and_its_cleanup_gets_call_ended(
    line: Line, action: str
) -> None:
    """The report was dispatched (the cleanup task is scheduled, not run): the command, issued
    in the same loop step, is refused with the calls layer's error, not the UA's."""
    call, sip_call = await line.ringing_call()
    line.take(cancel_text(call))
    with pytest.raises(CallStateError) as info:
        await PENDING_COMMANDS[action](call)
    assert info.value.code == "call_ended"
    await cleaned_up(line, call, sip_call)


async def test_hangup_between_the_bye_report_and_its_cleanup_gets_call_ended(line: Line) -> None:
    call, sip_call = await line.confirmed_call()
    line.take(bye_text(sip_call, line))
    assert call.state is CallState.ACCEPTED  # the cleanup has not run yet
    with pytest.raises(CallStateError) as info:
        await call.hangup()
    assert info.value.code == "call_ended"
    await cleaned_up(line, call, sip_call)
    assert "BYE" not in line.sent_statuses()


async def test_the_session_built_for_an_accept_that_lost_the_race_is_closed(
    line: Line, monkeypatch: pytest.MonkeyPatch
) -> None:
    import palaver.calls.sip_gateway as gateway_module

    built: list[Any] = []
    real_build = gateway_module.build_session

    def recording_build(*args: Any, **kwargs: Any) -> Any:
        session = real_build(*args, **kwargs)
        built.append(session)
        return session

    monkeypatch.setattr(gateway_module, "build_session", recording_build)
    call, sip_call = await line.ringing_call()
    line.take(cancel_text(call), report=False)
    answer = await line.post(call, "accept", json={"type": "realtime"})
    assert answer.status_code == 409, answer.text
    [session] = built
    assert session._closed
    await cleaned_up(line, call, sip_call)
