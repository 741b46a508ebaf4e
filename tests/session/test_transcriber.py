"""Streaming recognition with a server-wide bound on live streams."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from palaver.backends.base import Transcript
from palaver.session import transcriber
from palaver.session.transcriber import StreamingTranscriber, StreamSlots


class CountingStream:
    def __init__(self, stt: CountingSTT) -> None:
        self.stt = stt
        self.samples = 0

    def push(self, pcm: bytes) -> str | None:
        self.samples += len(pcm) // 2
        self.stt.pushes += 1
        return None

    def finish(self) -> Transcript:
        self.stt.open -= 1
        return Transcript(text=f"{self.samples} samples", audio_seconds=self.samples / 16000)


class CountingSTT:
    name = "counting"
    sample_rate = 16000

    def __init__(self) -> None:
        self.open = 0
        self.most_open = 0
        self.pushes = 0

    def open_stream(self, **options: object) -> CountingStream:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        return CountingStream(self)


@pytest.fixture
def executor():
    with ThreadPoolExecutor(2) as pool:
        yield pool


async def test_slots_hand_over_in_order_and_survive_cancellation() -> None:
    slots = StreamSlots(1)
    assert slots.try_take() and not slots.try_take()
    order: list[str] = []

    async def wait(name: str) -> None:
        await slots.take()
        order.append(name)

    first = asyncio.create_task(wait("first"))
    cancelled = asyncio.create_task(wait("cancelled"))
    last = asyncio.create_task(wait("last"))
    await asyncio.sleep(0)
    cancelled.cancel()
    slots.give()
    await first
    slots.give()
    await last
    assert order == ["first", "last"]
    assert slots.free == 0
    slots.give()
    assert slots.free == 1


async def test_a_talker_beyond_the_bound_is_recognised_in_one_pass_later(executor) -> None:
    stt, slots = CountingSTT(), StreamSlots(1)
    live = StreamingTranscriber(stt, executor, slots=slots)
    waiting = StreamingTranscriber(stt, executor, slots=slots)
    for _ in range(5):
        live.feed(b"\0\0" * 160)
        waiting.feed(b"\0\0" * 160)
        await asyncio.sleep(0.01)
    assert not live.deferred and waiting.deferred
    pending = asyncio.create_task(waiting.finish())
    await asyncio.sleep(0.05)
    assert not pending.done()  # no slot until the live talker is done
    assert (await live.finish()).text == "800 samples"
    assert (await pending).text == "800 samples"  # all of its audio, in one pass
    assert stt.most_open == 1 and stt.open == 0
    assert slots.free == 1


async def test_discard_gives_the_slot_back(executor) -> None:
    stt, slots = CountingSTT(), StreamSlots(1)
    t = StreamingTranscriber(stt, executor, slots=slots)
    t.feed(b"\0\0" * 160)
    await asyncio.sleep(0.02)
    assert slots.free == 0
    t.discard()
    async with asyncio.timeout(2):
        await asyncio.gather(*transcriber._background)  # the stream is finished in the background
    assert slots.free == 1
    assert stt.open == 0
