"""Streaming recognition of one stretch of user audio, off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor

from palaver.backends.base import SpeechToText, SttStream, Transcript

_background: set[asyncio.Task[None]] = set()


class StreamingTranscriber:
    """Feeds audio to an STT stream on a worker thread as it arrives, so the transcript is
    (nearly) ready when the user stops. Pushes are coalesced: however fast audio arrives, at
    most one push is queued, and the pending bytes are bounded by the input buffer they mirror."""

    def __init__(
        self, stt: SpeechToText, executor: Executor, *, language: str | None = None, narrowband: bool = False
    ) -> None:
        self._stt = stt
        self._executor = executor
        self._language = language
        self._narrowband = narrowband
        self._stream: SttStream | None = None
        self._pending = bytearray()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.partial: str | None = None
        #: Called (on the event loop) with each newly stable piece of the transcript, if set.
        self.on_stable_text: Callable[[str], None] | None = None
        self._stable = _Stabilizer()

    def feed(self, pcm: bytes) -> None:
        if self._closed or not pcm:
            return
        self._pending += pcm
        if self._worker is None or self._worker.done():
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

    async def finish(self) -> Transcript:
        """Wait for all fed audio to be recognised and return the final transcript."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)
        if self._worker is not None:
            self._worker.result()  # re-raise a recognition failure
        self._closed = True
        loop = asyncio.get_running_loop()
        if self._stream is None:
            return Transcript(text="", audio_seconds=0.0)
        stream, self._stream = self._stream, None
        return await loop.run_in_executor(self._executor, stream.finish)

    def remaining(self, final: str) -> str:
        """What a delta must still carry so the deltas add up to ``final`` (empty if they cannot)."""
        return self._stable.rest(final)

    def discard(self) -> None:
        """Drop this utterance (buffer cleared, session closed). The stream is finished in the background."""
        self._closed = True
        self._pending.clear()
        stream, self._stream = self._stream, None
        if stream is not None:
            worker = self._worker

            async def release() -> None:
                if worker is not None:
                    await asyncio.wait([worker])
                await asyncio.get_running_loop().run_in_executor(self._executor, stream.finish)

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
