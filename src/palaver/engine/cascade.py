"""The cascade engine: LLM text streams into sentence-chunked TTS.

ASR is not here: the session transcribes user audio as it arrives (so the transcript is ready
when the turn ends) and the engine sees user turns as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import Executor
from typing import Any

from palaver.backends.base import (
    BackendError,
    ChatEvent,
    ChatFinished,
    ChatModel,
    ChatRequest,
    TextDelta,
    TextToSpeech,
    ToolCallDelta,
)
from palaver.engine.events import (
    EngineEvent,
    EngineFinished,
    EngineRequest,
    FunctionCallArguments,
    FunctionCallEnd,
    FunctionCallStart,
    OutputAudio,
    OutputText,
)
from palaver.engine.sentences import SentenceChunker
from palaver.protocol.ids import new_id

_LLM_QUEUE_BOUND = 256
_DONE = object()


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token) for backends that report no usage."""
    return (len(text) + 3) // 4


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Text tokens of a prompt (image parts are priced separately, by the session)."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            total += sum(estimate_tokens(str(p.get("text", ""))) for p in content if isinstance(p, dict))
        elif content:
            total += estimate_tokens(str(content))
        for call in message.get("tool_calls") or ():
            total += estimate_tokens(str(call))
    return total


class CascadeEngine:
    def __init__(self, *, chat: ChatModel, tts: TextToSpeech, executor: Executor) -> None:
        self.chat = chat
        self.tts = tts
        self._executor = executor

    async def generate(self, request: EngineRequest) -> AsyncGenerator[EngineEvent, None]:
        chat_request = ChatRequest(
            messages=request.messages,
            tools=request.tools,
            tool_choice=request.tool_choice,
            max_tokens=request.max_output_tokens,
        )
        events = self._llm_events(chat_request)
        chunker = SentenceChunker()
        calls = _CallAssembler()
        finished: ChatFinished | None = None
        out_chars = 0
        try:
            async for ev in events:
                if isinstance(ev, TextDelta):
                    out_chars += len(ev.text)
                    if not request.audio:
                        yield OutputText(ev.text)
                        continue
                    for piece in chunker.push(ev.text):
                        async for out in self._speak(piece, request):
                            yield out
                elif isinstance(ev, ToolCallDelta):
                    if request.audio:
                        async for out in self._flush_speech(chunker, request):
                            yield out
                    for out in calls.push(ev):
                        yield out
                else:
                    finished = ev
            if request.audio:
                async for out in self._flush_speech(chunker, request):
                    yield out
            for out in calls.close():
                yield out
        finally:
            await events.aclose()
        usage = finished.usage if finished is not None else None
        in_tokens = usage.input_tokens if usage else estimate_prompt_tokens(request.messages)
        out_tokens = usage.output_tokens if usage else (out_chars + 3) // 4
        reason = "length" if finished is not None and finished.reason == "length" else "stop"
        yield EngineFinished(
            reason=reason,
            text_input_tokens=in_tokens,
            text_output_tokens=out_tokens,
            input_counted_by_model=usage is not None,
        )

    async def _llm_events(self, request: ChatRequest) -> AsyncGenerator[ChatEvent, None]:
        """Read the LLM on its own task so it keeps streaming while earlier sentences are spoken."""
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=_LLM_QUEUE_BOUND)

        async def produce() -> None:
            try:
                async for ev in self.chat.stream(request):
                    await queue.put(ev)
            except BackendError as exc:
                await queue.put(exc)
            except Exception as exc:  # a broken backend fails this response, not the process
                error = BackendError(f"the LLM backend failed: {type(exc).__name__}", code="llm_error")
                error.__cause__ = exc  # logged with the response's failure; never sent to the client
                await queue.put(error)
            await queue.put(_DONE)

        task = asyncio.create_task(produce(), name="llm-stream")
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, BackendError):
                    raise item
                assert isinstance(item, TextDelta | ToolCallDelta | ChatFinished)
                yield item
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _flush_speech(
        self, chunker: SentenceChunker, request: EngineRequest
    ) -> AsyncIterator[EngineEvent]:
        rest = chunker.flush()
        if rest:
            async for out in self._speak(rest, request):
                yield out

    async def _speak(self, piece: str, request: EngineRequest) -> AsyncIterator[EngineEvent]:
        """Yield the piece's transcript, then its audio chunk by chunk as TTS makes it.

        Synthesis starts before the transcript is handed on, so it runs while the transcript event
        is being sent."""
        text = piece.strip()
        if not text:
            yield OutputText(piece)
            return
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()  # bounded by the piece's length
        stop = threading.Event()

        def sink(pcm: bytes) -> bool:
            if stop.is_set():
                return False
            loop.call_soon_threadsafe(chunks.put_nowait, pcm)
            return True

        def run() -> None:
            try:
                self.tts.synthesize(text, voice=request.voice, speed=request.speed, sink=sink)
            finally:
                loop.call_soon_threadsafe(chunks.put_nowait, None)

        job = loop.run_in_executor(self._executor, run)
        try:
            yield OutputText(piece)
            while (pcm := await chunks.get()) is not None:
                yield OutputAudio(pcm, self.tts.sample_rate)
            await job  # re-raises a synthesis failure
        finally:
            stop.set()
            if not job.done():
                job.cancel()


class _CallAssembler:
    """Turns one round's tool-call deltas into start / arguments / end events, one call at a time.

    Every call gets a ``call_…`` id of Palaver's own, unique for the server's lifetime, as OpenAI
    mints its own: brains number their calls per request ("0", "call_0") or repeat an id, and
    two calls of a session sharing a ``call_id`` would have their outputs mixed up in the history.
    The brain's id only tells its calls apart within the round: a delta with another ``index``,
    or with another id at the same index, starts a new call. The history sent back to the brain
    carries Palaver's ids (unique, so every output maps back to one call).
    """

    def __init__(self) -> None:
        self._index: int | None = None
        self._brain_id: str | None = None

    def push(self, delta: ToolCallDelta) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        other_id = delta.call_id is not None and self._brain_id not in (None, delta.call_id)
        if delta.index != self._index or other_id:
            out.extend(self.close())
            self._index = delta.index
            self._brain_id = delta.call_id
            out.append(FunctionCallStart(call_id=new_id("call"), name=delta.name or ""))
        elif self._brain_id is None:
            self._brain_id = delta.call_id
        if delta.arguments:
            out.append(FunctionCallArguments(delta.arguments))
        return out

    def close(self) -> list[EngineEvent]:
        if self._index is None:
            return []
        self._index = self._brain_id = None
        return [FunctionCallEnd()]
