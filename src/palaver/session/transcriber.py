"""Streaming recognition of one stretch of user audio, off the event loop."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from concurrent.futures import Executor

from palaver.backends.base import SpeechToText, SttStream, Transcript

_background: set[asyncio.Task[None]] = set()


class StreamSlots:
    """A server-wide bound on live recognition streams.

    Each live stream holds a recogniser (for pocketsphinx a decoder of ~100 MB) for as long as
    the user speaks, so the number of simultaneous talkers must be bounded. An utterance that
    starts when every slot is taken is kept and recognised in one pass when a slot frees up:
    later, but with bounded memory and no failure."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("at least one recognition slot is needed")
        self.count = count
        self._free = count
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def free(self) -> int:
        return self._free

    def try_take(self) -> bool:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as we were cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes straight to the next waiter
                return
        self._free += 1


class StreamingTranscriber:
    """Feeds audio to an STT stream on a worker thread as it arrives, so the transcript is
    (nearly) ready when the user stops. Pushes are coalesced: however fast audio arrives, at
    most one push is queued, and the pending bytes are bounded by the input buffer they mirror.
    With ``slots`` given and none free when the utterance starts, its audio is kept and
    recognised in one pass at :meth:`finish` (see :class:`StreamSlots`)."""

    def __init__(
        self,
        stt: SpeechToText,
        executor: Executor,
        *,
        language: str | None = None,
        narrowband: bool = False,
        slots: StreamSlots | None = None,
    ) -> None:
        self._stt = stt
        self._executor = executor
        self._language = language
        self._narrowband = narrowband
        self._slots = slots
        self._live: bool | None = None  # decided by the first audio: live, or deferred
        self._holding = False  # holds one of the slots
        self._stream: SttStream | None = None
        self._pending = bytearray()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.partial: str | None = None
        #: Called (on the event loop) with each newly stable piece of the transcript, if set.
        self.on_stable_text: Callable[[str], None] | None = None
        self._stable = _Stabilizer()

    @property
    def deferred(self) -> bool:
        return self._live is False

    def feed(self, pcm: bytes) -> None:
        if self._closed or not pcm:
            return
        if self._live is None:
            self._live = self._slots is None or self._slots.try_take()
            self._holding = self._live and self._slots is not None
        self._pending += pcm
        if self._live and (self._worker is None or self._worker.done()):
            self._worker = asyncio.create_task(self._drain(), name="stt-push")

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending and not self._closed:
            chunk = bytes(self._pending)
            self._pending.clear()
            if self._stream is None:
                stream = await loop.run_in_executor(self._executor, self._open)
                if self._closed:  # discarded while the stream was opening
                    await loop.run_in_executor(self._executor, stream.finish)
                    return
                self._stream = stream
            partial = await loop.run_in_executor(self._executor, self._stream.push, chunk)
            if partial is not None:
                self.partial = partial
                piece = self._stable.push(partial)
                if piece and self.on_stable_text is not None:
                    self.on_stable_text(piece)

    def _open(self) -> SttStream:
        live = self.on_stable_text is not None
        return self._stt.open_stream(language=self._language, narrowband=self._narrowband, live=live)

    def _in_one_pass(self, audio: bytes) -> Transcript:
        stream = self._open()
        stream.push(audio)
        return stream.finish()

    async def finish(self) -> Transcript:
        """Wait for all fed audio to be recognised and return the final transcript."""
        loop = asyncio.get_running_loop()
        try:
            if self._live is False:
                assert self._slots is not None
                await self._slots.take()
                self._holding = True
                self._closed = True
                audio, self._pending = bytes(self._pending), bytearray()
                return await loop.run_in_executor(self._executor, self._in_one_pass, audio)
            while self._worker is not None and not self._worker.done():
                await asyncio.shield(self._worker)
            if self._worker is not None:
                self._worker.result()  # re-raise a recognition failure
            self._closed = True
            if self._stream is None:
                return Transcript(text="", audio_seconds=0.0)
            stream, self._stream = self._stream, None
            return await loop.run_in_executor(self._executor, stream.finish)
        finally:
            self._give_back()

    def _give_back(self) -> None:
        if self._holding and self._slots is not None:
            self._holding = False
            self._slots.give()

    def remaining(self, final: str) -> str:
        """What a delta must still carry so the deltas add up to ``final`` (empty if they cannot)."""
        return self._stable.rest(final)

    def discard(self) -> None:
        """Drop this utterance (buffer cleared, session closed). The stream is finished, and its
        slot given back, in the background."""
        self._closed = True
        self._pending.clear()
        stream, self._stream = self._stream, None
        worker = self._worker
        if stream is None and (worker is None or worker.done()):
            self._give_back()
            return

        async def release() -> None:
            try:
                if worker is not None:
                    await asyncio.wait([worker])
                if stream is not None:
                    await asyncio.get_running_loop().run_in_executor(self._executor, stream.finish)
            finally:
                self._give_back()

        task = asyncio.get_running_loop().create_task(release())
        _background.add(task)
        task.add_done_callback(_background.discard)


class _Stabilizer:
    """Turns revisable partial hypotheses into append-only text.

    A word is released once ``agree`` consecutive partials agree on it and on every word before
    it, and ``lag`` words follow it (the recogniser's last words are the ones it still revises);
    released words are never taken back, so the deltas of a transcript only ever grow. With
    pocketsphinx partials of flite speech in noise (30 dB), ``agree=6, lag=2`` released words the
    final forward-pass transcript kept in every case measured.
    """

    def __init__(self, lag: int = 2, agree: int = 6) -> None:
        self._lag = lag
        self._agree = agree
        self._history: list[list[str]] = []
        self._released: list[str] = []

    def push(self, partial: str) -> str:
        words = partial.split()
        self._history = [*self._history[-(self._agree - 1) :], words] if self._agree > 1 else [words]
        if len(self._history) < self._agree:
            return ""
        agreed = 0
        for column in zip(*self._history, strict=False):
            if any(w != column[0] for w in column):
                break
            agreed += 1
        agreed = min(agreed, len(words) - self._lag)
        if agreed <= len(self._released) or words[: len(self._released)] != self._released:
            return ""
        new = words[len(self._released) : agreed]
        piece = " ".join(new)
        if self._released:
            piece = " " + piece
        self._released.extend(new)
        return piece

    def rest(self, final: str) -> str:
        words = final.split()
        if words[: len(self._released)] != self._released:
            return ""
        new = words[len(self._released) :]
        if not new:
            return ""
        piece = " ".join(new)
        return " " + piece if self._released else piece
