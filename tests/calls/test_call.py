"""The call state machine and registry, without sockets: a fake transport records the commands."""

from __future__ import annotations

import asyncio

import pytest

from palaver.calls.call import Call, CallState, CallStateError
from palaver.calls.fanout import EventFanout
from palaver.calls.registry import CallRegistry
from palaver.protocol.server_events import InputAudioBufferClearedEvent
from palaver.protocol.session_config import new_realtime_session
from tests.calls.fakes import FakeControl

HEADERS = [
    {"name": "From", "value": "<sip:alice@example.com>;tag=1"},
    {"name": "To", "value": "<sip:1000@pbx>"},
]


def make_call() -> tuple[Call, FakeControl]:
    control = FakeControl()
    call = Call(control=control, sip_headers=list(HEADERS), dialled="1000")  # type: ignore[arg-type]
    control.call = call
    return call, control


def config():
    return new_realtime_session("gpt-realtime", expires_at=0)


async def test_a_call_has_an_rtc_id_and_starts_pending() -> None:
    call, _ = make_call()
    assert call.id.startswith("rtc_") and len(call.id) == 25
    assert call.state is CallState.PENDING and not call.live and not call.over


async def test_accept_then_refer_then_hangup() -> None:
    call, control = make_call()
    await call.accept(config())
    assert call.state is CallState.ACCEPTED
    await call.refer("sip:bob@example.com")
    assert call.state is CallState.REFERRED
    await call.hangup()
    assert call.state is CallState.ENDED and call.ended.is_set()
    assert control.names() == ["accept", "refer", "hangup"]


@pytest.mark.parametrize("first", ["accept", "reject"])
async def test_a_decided_call_cannot_be_decided_again(first: str) -> None:
    call, control = make_call()
    await (call.accept(config()) if first == "accept" else call.reject(486))
    for again in (call.accept(config()), call.reject()):
        with pytest.raises(CallStateError) as info:
            await again
        assert info.value.code == ("call_already_accepted" if first == "accept" else "call_already_rejected")
    assert control.names() == [first]


async def test_refer_and_hangup_need_an_accepted_call_but_hangup_declines_a_pending_one() -> None:
    call, control = make_call()
    with pytest.raises(CallStateError) as info:
        await call.refer("tel:+14155550123")
    assert info.value.code == "call_not_accepted"
    await call.hangup()
    assert control.commands == [("reject", 603)]
    assert call.state is CallState.REJECTED and call.ended.is_set()
    with pytest.raises(CallStateError) as info:
        await call.hangup()
    assert info.value.code == "call_ended"


class EndingControl(FakeControl):
    """Reports the line over while carrying a reject out, as the SIP gateway's cleanup does."""

    async def reject(self, status_code: int) -> None:
        await super().reject(status_code)
        assert self.call is not None
        self.call.mark_ended()


@pytest.mark.parametrize("command", ["reject", "hangup"])
async def test_a_reject_stays_a_reject_when_the_transport_ends_the_line_meanwhile(command: str) -> None:
    control = EndingControl()
    call = Call(control=control, sip_headers=list(HEADERS), dialled="1000")  # type: ignore[arg-type]
    control.call = call
    await (call.reject(486) if command == "reject" else call.hangup())
    assert call.state is CallState.REJECTED and call.ended.is_set() and call.over
    with pytest.raises(CallStateError) as info:
        await call.accept(config())
    assert info.value.code == "call_already_rejected"


async def test_commands_are_serialised_and_the_loser_of_a_race_is_told() -> None:
    call, control = make_call()
    control.gate = asyncio.Event()
    first = asyncio.create_task(call.accept(config()))
    second = asyncio.create_task(call.reject(486))
    await control.received.wait()
    assert control.names() == ["accept"]  # the reject waits for the accept to finish
    control.gate.set()
    await first
    with pytest.raises(CallStateError):
        await second
    assert control.names() == ["accept"]


async def test_the_transport_ending_a_pending_call_wakes_the_decision_and_blocks_commands() -> None:
    call, _ = make_call()
    waiter = asyncio.create_task(call.wait_decided())
    call.mark_ended()
    assert await waiter is CallState.ENDED
    with pytest.raises(CallStateError) as info:
        await call.accept(config())
    assert info.value.code == "call_ended"
    call.mark_ended()  # idempotent
    assert call.state is CallState.ENDED


async def test_a_failing_transport_leaves_the_call_pending() -> None:
    call, control = make_call()
    control.fail = RuntimeError("no codec in common")
    with pytest.raises(RuntimeError):
        await call.accept(config())
    assert call.state is CallState.PENDING
    await call.reject()
    assert control.commands[-1] == ("reject", 603)


class Sink:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.finished = False

    def put(self, text: str) -> None:
        self.texts.append(text)

    def finish(self) -> None:
        self.finished = True


def test_fanout_sends_each_event_once_serialised_to_every_sink_and_closes_them() -> None:
    fanout = EventFanout()
    fanout(InputAudioBufferClearedEvent())  # nobody listening: dropped
    a, b = Sink(), Sink()
    assert fanout.attach(a) and fanout.attach(b)
    event = InputAudioBufferClearedEvent()
    fanout(event)
    fanout.detach(b)
    fanout(InputAudioBufferClearedEvent())
    assert a.texts[0] == b.texts[0] == event.to_json()
    assert len(a.texts) == 2 and len(b.texts) == 1
    fanout.close()
    assert a.finished and not b.finished
    assert not fanout.attach(Sink())
    fanout(InputAudioBufferClearedEvent())
    assert len(a.texts) == 2


async def test_the_call_ending_closes_its_sidebands() -> None:
    call, _ = make_call()
    sink = Sink()
    call.fanout.attach(sink)
    await call.accept(config())
    call.mark_ended()
    assert sink.finished


async def test_registry_forgets_ended_calls_after_the_grace() -> None:
    registry = CallRegistry(ended_grace=0.01)
    call, _ = make_call()
    registry.register(call)
    assert registry.get(call.id) is call and call.id in registry
    with pytest.raises(ValueError):
        registry.register(call)
    call.mark_ended()
    assert registry.get(call.id) is call  # still known for a moment: late commands get a 409
    for _ in range(500):
        if registry.get(call.id) is None:
            break
        await asyncio.sleep(0.01)
    assert registry.get(call.id) is None and len(registry) == 0


async def test_registry_remove_and_close() -> None:
    registry = CallRegistry(ended_grace=60)
    call, _ = make_call()
    registry.register(call)
    call.mark_ended()
    registry.close()
    assert registry.remove(call.id) is call
    assert registry.remove(call.id) is None
