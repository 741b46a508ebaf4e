"""The MediaClock runs the receive side of a tick in slices, each its own loop callback, so the
next tick's sends are not held up by a whole phase of sessions (see ``palaver.transports.rtp``).

The endpoints' receive ticks are replaced by recorders: these tests are about the order in
which the clock runs things, not about media. No timing assertions; waits are hang guards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from palaver.transports.rtp import MediaClock, RtpEndpoint

WAIT = 10.0  # a hang guard, not a timing expectation


@pytest.fixture
async def clock() -> AsyncIterator[MediaClock]:
    # One phase, and a slice ends after every endpoint: the order of callbacks is then fixed.
    yield MediaClock(asyncio.get_running_loop(), phases=1, receive_slice=0.0)


async def endpoints(clock: MediaClock, n: int) -> list[RtpEndpoint]:
    eps = [await RtpEndpoint.open("127.0.0.1", (30000, 40000), clock=clock) for _ in range(n)]
    for ep in eps:
        ep.start(("127.0.0.1", 9), 0, "PCMU", None)  # the discard port: sends go nowhere
    return eps


async def until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not cond():  # noqa: ASYNC110 - polling what the clock updates
            await asyncio.sleep(0.01)


async def test_other_callbacks_run_between_the_receive_slices_of_one_tick(clock: MediaClock) -> None:
    a, b = await endpoints(clock, 2)
    loop = asyncio.get_running_loop()
    order: list[str] = []

    def receive_a(now: float, wallclock: float) -> None:
        order.append("a")
        loop.call_soon(order.append, "other")  # e.g. a session task woken by a's audio

    a._receive_tick = receive_a  # type: ignore[method-assign]
    b._receive_tick = lambda now, wallclock: order.append("b")  # type: ignore[method-assign]
    try:
        await until(lambda: order.count("b") >= 5)
    finally:
        await a.close()
        await b.close()
    # Every tick: a's slice, then what it woke, then b's slice (all in one callback before).
    first = order.index("a")
    assert order[first : first + 12] == ["a", "other", "b"] * 4


async def test_a_phase_whose_receive_pass_is_still_under_way_is_not_started_again(
    clock: MediaClock,
) -> None:
    eps = await endpoints(clock, 4)
    received = [0] * len(eps)
    slow = [True]

    def receiver(i: int) -> Callable[[float, float], None]:
        def receive(now: float, wallclock: float) -> None:
            received[i] += 1
            if slow[0]:
                # One slow pass (a burst of session work) that spans more than a 20 ms period.
                end = time.perf_counter() + 0.015
                while time.perf_counter() < end:
                    pass
                slow[0] = i < len(eps) - 1

        return receive

    for i, ep in enumerate(eps):
        ep._receive_tick = receiver(i)  # type: ignore[method-assign,assignment]
    try:
        await until(lambda: min(received) >= 3)
    finally:
        for ep in eps:
            await ep.close()
    # The ticks that fell due meanwhile sent their packets but left the receive side to the
    # pass under way; every endpoint was received from again afterwards.
    assert clock.receive_skips >= 1
    assert clock.ticks > min(received)
