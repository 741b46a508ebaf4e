"""The Realtime session: client events in, server events out. No sockets.

A transport feeds frames to :meth:`Session.handle_frame` and gives the session an ``emit``
callback that serialises each event at once (items are mutable; an event must show the item as
it was when the event was made) and queues it for the socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Executor
from typing import Any, Protocol

from palaver.audio.formats import InputDecoder, wire_duration_ms, wire_rate
from palaver.backends.base import SpeechToText, Transcript, VoiceActivityDetector
from palaver.egress import EgressPolicy
from palaver.engine.context import build_messages
from palaver.engine.events import EngineEvent, EngineRequest
from palaver.protocol.audio_config import SemanticVad, ServerVad
from palaver.protocol.client_events import (
    ClientEvent,
    ConversationItemCreateEvent,
    ConversationItemDeleteEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    OutputAudioBufferClearEvent,
    ResponseCancelEvent,
    ResponseCreateEvent,
    SessionUpdateEvent,
    parse_client_event,
)
from palaver.protocol.errors import ProtocolError
from palaver.protocol.ids import new_id
from palaver.protocol.items import (
    ConversationItem,
    InputAudioContent,
    InputImageContent,
    McpApprovalResponseItem,
    MessageItem,
    OutputAudioContent,
)
from palaver.protocol.responses import (
    ItemReference,
    RealtimeResponse,
    ResponseCreateParams,
    ResponseStatusDetails,
)
from palaver.protocol.server_events import (
    ConversationItemAddedEvent,
    ConversationItemDeletedEvent,
    ConversationItemDoneEvent,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    ConversationItemRetrievedEvent,
    ConversationItemTruncatedEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferDtmfEventReceivedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    InputAudioBufferTimeoutTriggeredEvent,
    LogProb,
    ResponseCreatedEvent,
    ServerEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)
from palaver.protocol.session_config import (
    RealtimeSessionConfig,
    TranscriptionSessionConfig,
    apply_session_update,
    voice_name,
)
from palaver.redact import new_error_id, server_error_message
from palaver.session.conversation import Conversation, StoredAudio
from palaver.session.images import image_tokens, inspect_image
from palaver.session.input_audio import InputAudio, Utterance
from palaver.session.response_run import ResponseRun
from palaver.session.tooling import SessionTools
from palaver.session.transcriber import StreamingTranscriber, StreamSlots
from palaver.tools.policy import ToolPolicy
from palaver.turn.detector import BargeInGuard, SpeechStarted, SpeechStopped
from palaver.turn.idle import IdleTimer
from palaver.turn.playout import PlayoutTracker

log = logging.getLogger(__name__)

#: A commit needs at least this much audio.
MIN_COMMIT_MS = 100.0
#: Rounds of the brain in one response (it goes on after server-side tool results).
MAX_TOOL_ROUNDS = 5
#: How long a response waits for the transcripts of the user audio in its context.
TRANSCRIPT_WAIT_SECONDS = 30.0


class Engine(Protocol):
    def generate(self, request: EngineRequest) -> AsyncGenerator[EngineEvent, None]: ...


SessionConfig = RealtimeSessionConfig | TranscriptionSessionConfig


class Session:
    def __init__(
        self,
        *,
        config: SessionConfig,
        engine: Engine,
        stt: SpeechToText,
        executor: Executor,
        emit: Callable[[ServerEvent], None],
        vad: VoiceActivityDetector | None = None,
        barge_in: BargeInGuard | None = None,
        clock: Callable[[], float] = time.monotonic,
        server_playout: bool = False,
        on_playout_clear: Callable[[], None] | None = None,
        stt_slots: StreamSlots | None = None,
        accepts_images: bool = True,
        policy: ToolPolicy | None = None,
        mcp_timeout: float = 30.0,
        mcp_connect_timeout: float = 10.0,
        approval_timeout: float = 120.0,
        mcp_egress: EgressPolicy | None = None,
    ) -> None:
        self.config: SessionConfig = config
        self._engine = engine
        self._stt = stt
        self._vad = vad
        self._barge_in = barge_in
        self._clock = clock
        self._server_playout = server_playout
        self._on_playout_clear = on_playout_clear
        self._stt_slots = stt_slots
        self._accepts_images = accepts_images
        self._image_tokens: dict[str, int] = {}  # item id -> input tokens of its images
        self._executor = executor
        self._emit = emit
        self.conversation = Conversation()
        self.conversation_id = new_id("conv")
        self._tools = SessionTools(
            conversation=self.conversation,
            emit=emit,
            policy=policy or ToolPolicy.allow_all(),
            session_id=config.id,
            mcp_timeout=mcp_timeout,
            mcp_connect_timeout=mcp_connect_timeout,
            approval_timeout=approval_timeout,
            # Where MCP servers may be (build_session passes the server's; alone: public only).
            mcp_egress=mcp_egress or EgressPolicy.public_only(),
        )
        self._input = self._new_input()
        self._playout = PlayoutTracker()
        self._idle = IdleTimer()
        self._idle_handle: asyncio.TimerHandle | None = None
        self._transcripts: dict[str, asyncio.Task[None]] = {}
        self._runs: dict[str, ResponseRun] = {}
        self._active: ResponseRun | None = None  # the one response writing to the default conversation
        self._audio_output_started = False
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._emit(SessionCreatedEvent(session=self.config))
        self._tools.sync(self._configured_tools())

    async def close(self) -> None:
        """The client is gone: stop all work, send nothing more."""
        self._closed = True
        for run in list(self._runs.values()):
            run.closed = True
            if run.task is not None:
                run.task.cancel()
        self._input.close()
        self._disarm_idle()
        await self._tools.aclose()
        for task in list(self._transcripts.values()):
            task.cancel()
        tasks = [r.task for r in self._runs.values() if r.task is not None] + list(self._transcripts.values())
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._runs.clear()

    @property
    def active_response_id(self) -> str | None:
        return self._active.id if self._active is not None else None

    # ------------------------------------------------------------------ client events

    async def handle_frame(self, frame: str | bytes) -> None:
        """Handle one client frame. Bad input becomes an ``error`` event; the session lives on."""
        try:
            event = parse_client_event(frame)
        except ProtocolError as exc:
            self._emit(exc.to_event())
            return
        try:
            self.handle_event(event)
        except ProtocolError as exc:
            if exc.event_id is None:
                exc.event_id = event.event_id
            self._emit(exc.to_event())

    def handle_event(self, event: ClientEvent) -> None:
        if isinstance(event, SessionUpdateEvent):
            self._session_update(event)
        elif isinstance(event, InputAudioBufferAppendEvent):
            self._append(event)
        elif isinstance(event, InputAudioBufferCommitEvent):
            self._commit(event.event_id)
        elif isinstance(event, InputAudioBufferClearEvent):
            self._clear_input()
        elif isinstance(event, OutputAudioBufferClearEvent):
            if not self._server_playout:
                raise ProtocolError(
                    "output_audio_buffer.clear is only supported on WebRTC and SIP sessions; "
                    "WebSocket clients play audio themselves (send conversation.item.truncate).",
                    code="invalid_value",
                    param="type",
                )
            self._interrupt_playout()
        elif isinstance(event, ConversationItemCreateEvent):
            self._item_create(event)
        elif isinstance(event, ConversationItemRetrieveEvent):
            self._item_retrieve(event)
        elif isinstance(event, ConversationItemDeleteEvent):
            self._item_delete(event)
        elif isinstance(event, ConversationItemTruncateEvent):
            self._item_truncate(event)
        elif isinstance(event, ResponseCreateEvent):
            self._response_create(event)
        elif isinstance(event, ResponseCancelEvent):
            self._response_cancel(event)

    # ------------------------------------------------------------------ session

    def input_format(self) -> str:
        """The wire format of the session's input audio now."""
        return self.config.audio.input.format.type

    def _turn_detection(self) -> ServerVad | SemanticVad | None:
        return self.config.audio.input.turn_detection

    def _new_input(self) -> InputAudio:
        audio_in = self.config.audio.input
        return InputAudio(
            format_type=audio_in.format.type,
            stt_rate=self._stt.sample_rate,
            vad=self._vad,
            turn_detection=audio_in.turn_detection,
            noise_reduction=audio_in.noise_reduction,
            new_transcriber=self._new_transcriber,
            barge_in=self._barge_in,
        )

    def _new_transcriber(self, item_id: str | None = None) -> StreamingTranscriber:
        transcription = self.config.audio.input.transcription
        language = transcription.language if transcription is not None else None
        narrowband = wire_rate(self.input_format()) < self._stt.sample_rate
        transcriber = StreamingTranscriber(
            self._stt, self._executor, language=language, narrowband=narrowband, slots=self._stt_slots
        )
        if item_id is not None and isinstance(self.config, TranscriptionSessionConfig):
            # Transcription sessions stream words as the user speaks, under the coming item's id.
            transcriber.on_stable_text = functools.partial(self._partial_delta, item_id)
        return transcriber

    def _partial_delta(self, item_id: str, delta: str) -> None:
        if not self._closed:
            self._emit(
                ConversationItemInputAudioTranscriptionDeltaEvent(
                    item_id=item_id, content_index=0, delta=delta
                )
            )

    def _session_update(self, event: SessionUpdateEvent) -> None:
        old = self.config.audio.input
        self.config = apply_session_update(
            self.config,
            event.session,
            event_id=event.event_id,
            audio_output_started=self._audio_output_started,
        )
        new = self.config.audio.input
        if new.format != old.format or new.noise_reduction != old.noise_reduction:
            # Buffered audio was in the old format (or cleaned differently): it cannot be mixed.
            self._input.close()
            self._input = self._new_input()
        elif new.turn_detection != old.turn_detection:
            self._input.configure_turns(new.turn_detection, self._barge_in)  # applies at once
        self._emit(SessionUpdatedEvent(session=self.config))
        self._tools.sync(self._configured_tools())

    # ------------------------------------------------------------------ input audio

    def _now_ms(self) -> float:
        return self._clock() * 1000.0

    def _append(self, event: InputAudioBufferAppendEvent) -> None:
        self.feed_audio(event.audio_bytes())

    def feed_audio(self, wire: bytes) -> None:
        """Input audio from a media transport (SIP, WebRTC), in the session's input format."""
        if self._closed:
            return
        speaking = self._playout.speaking(self._now_ms())
        for turn_event in self._input.append(wire, assistant_speaking=speaking):
            if isinstance(turn_event, SpeechStarted):
                self._speech_started(turn_event)
            else:
                self._speech_stopped(turn_event)

    def dtmf(self, digit: str) -> None:
        """A key pressed on a phone call (RFC 4733 or SIP INFO): tell the client."""
        if not self._closed:
            self._emit(InputAudioBufferDtmfEventReceivedEvent(event=digit, received_at=int(time.time())))

    def _speech_started(self, event: SpeechStarted) -> None:
        self._disarm_idle()
        self._emit(
            InputAudioBufferSpeechStartedEvent(
                audio_start_ms=event.audio_start_ms, item_id=self._input.pending_item_id
            )
        )
        detection = self._turn_detection()
        if detection is not None and detection.interrupt_response:
            if self._active is not None:
                self._cancel(self._active, "turn_detected")
            self._interrupt_playout()

    def _speech_stopped(self, event: SpeechStopped) -> None:
        self._emit(
            InputAudioBufferSpeechStoppedEvent(
                audio_end_ms=event.audio_end_ms, item_id=self._input.pending_item_id
            )
        )
        self._commit_utterance(self._input.commit())
        detection = self._turn_detection()
        if (
            isinstance(self.config, RealtimeSessionConfig)
            and detection is not None
            and detection.create_response
            and self._active is None
        ):
            self._start_response(ResponseCreateParams())

    def _clear_input(self) -> None:
        self._input.clear()
        self._emit(InputAudioBufferClearedEvent())

    def _commit(self, event_id: str | None) -> None:
        duration = self._input.buffered_ms
        if duration < MIN_COMMIT_MS:
            raise ProtocolError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {duration:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
                event_id=event_id,
            )
        self._commit_utterance(self._input.commit())

    def _commit_utterance(self, utterance: Utterance) -> None:
        item = MessageItem(
            id=utterance.item_id,
            type="message",
            status="completed",
            role="user",
            content=[InputAudioContent()],
        )
        previous = self.conversation.insert(item, None)
        self.conversation.set_audio(utterance.item_id, StoredAudio(self._input.format_type, utterance.wire))
        self._emit(InputAudioBufferCommittedEvent(previous_item_id=previous, item_id=utterance.item_id))
        self._emit(ConversationItemAddedEvent(previous_item_id=previous, item=item))
        self._emit(ConversationItemDoneEvent(previous_item_id=previous, item=item))
        self._start_transcription(item, utterance.transcriber)

    # ------------------------------------------------------------------ idle timeout

    def _arm_idle(self) -> None:
        detection = self._turn_detection()
        timeout = detection.idle_timeout_ms if isinstance(detection, ServerVad) else None
        if timeout is None or self._closed:
            return
        now = self._now_ms()
        self._idle.arm(max(now, self._playout.finished_at() or now), timeout)
        deadline = self._idle.deadline()
        assert deadline is not None
        self._disarm_handle()
        self._idle_handle = asyncio.get_running_loop().call_later((deadline - now) / 1000.0, self._idle_fired)

    def _disarm_handle(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def _disarm_idle(self) -> None:
        self._idle.cancel()
        self._disarm_handle()

    def _idle_fired(self) -> None:
        self._idle_handle = None
        if self._closed or not self._idle.expired(self._now_ms()) or self._input.in_speech or self._active:
            return
        utterance = self._input.commit()
        self._emit(
            InputAudioBufferTimeoutTriggeredEvent(
                audio_start_ms=utterance.start_ms, audio_end_ms=utterance.end_ms, item_id=utterance.item_id
            )
        )
        self._commit_utterance(utterance)
        self._start_response(ResponseCreateParams())

    # ------------------------------------------------------------------ transcription

    def _start_transcription(self, item: MessageItem, transcriber: StreamingTranscriber) -> None:
        item_id = item.id or ""
        task = asyncio.create_task(self._transcribe(item, transcriber), name=f"transcribe-{item_id}")
        self._transcripts[item_id] = task
        task.add_done_callback(lambda _: self._transcripts.pop(item_id, None))

    async def _transcribe(self, item: MessageItem, transcriber: StreamingTranscriber) -> None:
        item_id = item.id or ""
        index = next(i for i, p in enumerate(item.content) if isinstance(p, InputAudioContent))
        try:
            result = await transcriber.finish()
        except Exception:  # a failed ASR fails this transcription, not the session
            error_id = new_error_id()  # the client gets the id, the log has the exception beside it
            log.exception("transcription of %s failed (error id %s)", item_id, error_id)
            if self.config.audio.input.transcription is not None and not self._closed:
                message = server_error_message("The transcription", error_id)
                self._emit(
                    ConversationItemInputAudioTranscriptionFailedEvent(
                        item_id=item_id,
                        content_index=index,
                        error={"type": "server_error", "code": "transcription_failed", "message": message},
                    )
                )
            return
        part = item.content[index]
        assert isinstance(part, InputAudioContent)
        part.transcript = result.text
        if self.config.audio.input.transcription is None or self._closed:
            return
        rest = transcriber.remaining(result.text)
        if rest:
            self._emit(
                ConversationItemInputAudioTranscriptionDeltaEvent(
                    item_id=item_id, content_index=index, delta=rest
                )
            )
        self._emit(
            ConversationItemInputAudioTranscriptionCompletedEvent(
                item_id=item_id,
                content_index=index,
                transcript=result.text,
                usage={"type": "duration", "seconds": round(result.audio_seconds, 3)},
                logprobs=self._logprobs(result) if self._wants_logprobs() else None,
            )
        )

    def _wants_logprobs(self) -> bool:
        return "item.input_audio_transcription.logprobs" in (self.config.include or [])

    @staticmethod
    def _logprobs(result: Transcript) -> list[LogProb]:
        """One token a word (with its leading space), so the tokens spell the transcript."""
        return [
            LogProb(token=token, logprob=round(logprob, 4), bytes=list(token.encode()))
            for token, logprob in (
                (word if i == 0 else " " + word, lp) for i, (word, lp) in enumerate(result.word_logprobs)
            )
        ]

    async def _await_transcripts(self, items: list[ConversationItem]) -> None:
        waits = [self._transcripts[i.id] for i in items if i.id in self._transcripts]
        if waits:
            await asyncio.wait(waits, timeout=TRANSCRIPT_WAIT_SECONDS)

    # ------------------------------------------------------------------ items

    def _item_create(self, event: ConversationItemCreateEvent) -> None:
        item = event.item
        if item.id is None:
            item.id = new_id("item")
        if isinstance(item, MessageItem):
            self._image_tokens[item.id] = self._check_images(item, "item")
        if isinstance(item, McpApprovalResponseItem):
            self._tools.check_approval_response(item, event.event_id)
        audio_parts = (
            [p for p in item.content if isinstance(p, InputAudioContent)]
            if isinstance(item, MessageItem)
            else []
        )
        decoded: list[bytes] = []
        for part in audio_parts:
            try:
                decoded.append(base64.b64decode(part.audio or "", validate=True))
            except ValueError as exc:
                raise ProtocolError(
                    "Invalid base64 in input_audio content.", code="invalid_value", param="item.content.audio"
                ) from exc
        previous = self.conversation.insert(item, event.previous_item_id, event_id=event.event_id)
        if audio_parts:
            fmt = self.input_format()
            self.conversation.set_audio(item.id, StoredAudio(fmt, b"".join(decoded)))
            for part in audio_parts:
                part.audio = None  # kept once, in the conversation's audio store
        self._emit(ConversationItemAddedEvent(previous_item_id=previous, item=item))
        self._emit(ConversationItemDoneEvent(previous_item_id=previous, item=item))
        if isinstance(item, McpApprovalResponseItem):
            self._tools.approval_arrived(item)
        if audio_parts and isinstance(item, MessageItem):
            transcriber = self._new_transcriber()
            decoder = InputDecoder(self.input_format(), self._stt.sample_rate)
            transcriber.feed(decoder.decode(b"".join(decoded)) + decoder.flush())
            self._start_transcription(item, transcriber)

    def _check_images(self, item: MessageItem, prefix: str) -> int:
        """Validate the item's images; returns their input tokens. Raises ``ProtocolError``."""
        tokens = 0
        for index, part in enumerate(item.content):
            if not isinstance(part, InputImageContent):
                continue
            param = f"{prefix}.content[{index}]"
            if not self._accepts_images:
                raise ProtocolError(
                    "The configured model does not take images (set PALAVER_LLM_VISION=true for a vision "
                    "model); the image was not added.",
                    code="image_input_not_supported",
                    param=param,
                )
            tokens += image_tokens(inspect_image(part.image_url, param=param + ".image_url"), part.detail)
        return tokens

    def _context_image_tokens(self, context: list[ConversationItem]) -> int:
        return sum(self._image_tokens.get(i.id or "", 0) for i in context)

    def _item_retrieve(self, event: ConversationItemRetrieveEvent) -> None:
        item = self.conversation.get(event.item_id, event_id=event.event_id)
        copy = item.model_copy(deep=True)
        stored = self.conversation.audio(event.item_id)
        if stored is not None and isinstance(copy, MessageItem):
            encoded = base64.b64encode(bytes(stored.data)).decode("ascii")
            for part in copy.content:
                if isinstance(part, InputAudioContent | OutputAudioContent):
                    part.audio = encoded
                    break
        self._emit(ConversationItemRetrievedEvent(item=copy))

    def _item_delete(self, event: ConversationItemDeleteEvent) -> None:
        self.conversation.delete(event.item_id, event_id=event.event_id)
        self._image_tokens.pop(event.item_id, None)
        self._emit(ConversationItemDeletedEvent(item_id=event.item_id))

    def _item_truncate(self, event: ConversationItemTruncateEvent) -> None:
        item = self.conversation.get(event.item_id, event_id=event.event_id)
        if not (isinstance(item, MessageItem) and item.role == "assistant"):
            raise ProtocolError(
                "Only assistant messages can be truncated.", code="invalid_value", param="item_id"
            )
        if not (0 <= event.content_index < len(item.content)) or not isinstance(
            item.content[event.content_index], OutputAudioContent
        ):
            raise ProtocolError(
                f"Content index {event.content_index} of item '{event.item_id}' is not audio.",
                code="invalid_value",
                param="content_index",
            )
        self._truncate_item(item, event.content_index, event.audio_end_ms)
        if self._active is not None and any(o.id == event.item_id for o in self._active.response.output):
            self._cancel(self._active, "client_cancelled")
        self._emit(
            ConversationItemTruncatedEvent(
                item_id=event.item_id, content_index=event.content_index, audio_end_ms=event.audio_end_ms
            )
        )

    def _truncate_item(self, item: MessageItem, content_index: int, audio_end_ms: int) -> None:
        """Keep the first ``audio_end_ms`` of the item's audio, and the words spoken in it."""
        item_id = item.id or ""
        stored = self.conversation.audio(item_id)
        data = bytes(stored.data) if stored is not None else b""
        fmt = stored.format_type if stored is not None else self.output_format()
        duration = wire_duration_ms(fmt, len(data))
        if audio_end_ms > duration:
            raise ProtocolError(
                f"Audio content of {duration:.0f}ms is already shorter than {audio_end_ms}ms",
                code="invalid_value",
                param="audio_end_ms",
            )
        keep = int(len(data) * (audio_end_ms / duration)) if duration > 0 else 0
        keep -= keep % (2 if fmt == "audio/pcm" else 1)
        # The model must not hold words the user never heard. OpenAI drops the whole transcript;
        # Palaver keeps the words that were heard (it knows where each piece's speech begins), so
        # the brain still knows what it managed to say.
        heard = stored.heard_transcript(audio_end_ms) if stored is not None else ""
        self.conversation.set_audio(item_id, StoredAudio(fmt, data[:keep]))
        item.content[content_index] = OutputAudioContent(transcript=heard)

    def _interrupt_playout(self) -> None:
        """Barge-in: drop the audio not yet heard. With server-side playout (SIP, WebRTC) Palaver
        knows what was heard and truncates the items itself; WebSocket clients play audio
        themselves and send ``conversation.item.truncate``."""
        heard = self._playout.clear(self._now_ms())
        if not self._server_playout:
            return
        if self._on_playout_clear is not None:
            self._on_playout_clear()  # the transport drops what it has not sent yet
        for item_id, played_ms in heard.items():
            if item_id not in self.conversation:
                continue
            item = self.conversation.get(item_id)
            if (
                isinstance(item, MessageItem)
                and item.content
                and isinstance(item.content[0], OutputAudioContent)
            ):
                end_ms = int(played_ms)
                with contextlib.suppress(ProtocolError):  # audio shorter than its estimate: nothing to cut
                    self._truncate_item(item, 0, end_ms)
                    self._emit(
                        ConversationItemTruncatedEvent(item_id=item_id, content_index=0, audio_end_ms=end_ms)
                    )

    def output_format(self) -> str:
        """The wire format of the session's output audio now."""
        if isinstance(self.config, RealtimeSessionConfig):
            return self.config.audio.output.format.type
        return "audio/pcm"

    # ------------------------------------------------------------------ responses

    def _response_create(self, event: ResponseCreateEvent) -> None:
        self._start_response(event.response or ResponseCreateParams())

    def _start_response(self, params: ResponseCreateParams) -> None:
        config = self.config
        if not isinstance(config, RealtimeSessionConfig):
            raise ProtocolError(
                "Transcription sessions do not create responses.", code="invalid_value", param="type"
            )
        out_of_band = params.conversation == "none"
        if not out_of_band and self._active is not None:
            raise ProtocolError(
                f"Conversation already has an active response in progress: {self._active.id}. "
                "Wait until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
            )
        # Resolved before response.created: a bad reference is an error, not a half-made response.
        context = (
            [self._resolve_input(item, n) for n, item in enumerate(params.input)]
            if params.input is not None
            else self.conversation.items
        )
        modalities = params.output_modalities or config.output_modalities
        audio_mode = "audio" in modalities
        out_audio = (
            params.audio.output if params.audio is not None and params.audio.output is not None else None
        )
        fmt = (out_audio.format if out_audio is not None and out_audio.format is not None else None) or (
            config.audio.output.format
        )
        voice = (out_audio.voice if out_audio is not None and out_audio.voice is not None else None) or (
            config.audio.output.voice
        )
        max_tokens = (
            params.max_output_tokens if params.max_output_tokens is not None else config.max_output_tokens
        )
        response = RealtimeResponse(
            id=new_id("resp"),
            status="in_progress",
            status_details=None,
            output=[],
            conversation_id=None if out_of_band else self.conversation_id,
            output_modalities=list(modalities),
            max_output_tokens=max_tokens,
            audio={"output": {"format": fmt, "voice": voice}},
            usage=None,
            metadata=params.metadata,
        )
        run = ResponseRun(
            response=response,
            emit=self._emit,
            conversation=None if out_of_band else self.conversation,
            audio_mode=audio_mode,
            output_format=fmt.type,
            on_audio=self._audio_out,
            image_tokens=self._context_image_tokens(context),
            judge=self._tools.judge,
            mcp_tool=self._tools.mcp_tool,
        )
        self._runs[run.id] = run
        if not out_of_band:
            self._active = run
        self._emit(ResponseCreatedEvent(response=response.model_copy(deep=True)))
        instructions = params.instructions if params.instructions is not None else config.instructions
        tools = params.tools if params.tools is not None else config.tools
        tool_choice = params.tool_choice if params.tool_choice is not None else config.tool_choice
        request = EngineRequest(
            messages=[],  # rendered once the context's transcripts are ready
            tools=[],  # and the tools once the MCP servers are listed
            max_output_tokens=None if max_tokens == "inf" else int(max_tokens),
            audio=audio_mode,
            voice=voice_name(voice),
            speed=config.audio.output.speed,
        )
        run.task = asyncio.create_task(
            self._run(run, context, instructions, request, (tools, tool_choice)), name=f"response-{run.id}"
        )

    def _resolve_input(self, entry: ConversationItem | ItemReference, index: int) -> ConversationItem:
        if isinstance(entry, ItemReference):
            return self.conversation.get(entry.id, param="response.input")
        if isinstance(entry, MessageItem):
            if entry.id is None:
                entry.id = new_id("item")
            self._image_tokens[entry.id] = self._check_images(entry, f"response.input[{index}]")
        return entry

    def _audio_out(self, item_id: str, duration_ms: float) -> None:
        self._audio_output_started = True
        self._playout.queued(item_id, duration_ms, self._now_ms())

    async def _run(
        self,
        run: ResponseRun,
        context: list[ConversationItem],
        instructions: str,
        request: EngineRequest,
        tooling: tuple[list[Any], Any],
    ) -> None:
        try:
            await self._await_transcripts(context)
            await self._tools.ready()
            tools, tool_choice = tooling
            request = dataclasses.replace(
                request,
                tools=self._tools.llm_tools(tools),
                tool_choice=self._tools.llm_tool_choice(tool_choice),
            )
            answered: list[ConversationItem] = []  # tool results the server made during this response
            for _ in range(MAX_TOOL_ROUNDS):
                if run.response.conversation_id is not None:
                    items = self.conversation.items  # with what arrived meanwhile (approvals, outputs)
                else:
                    items = [*context, *run.response.output, *answered]
                messages = build_messages(instructions, items, mcp_name=self._tools.function_name)
                async with contextlib.aclosing(
                    self._engine.generate(dataclasses.replace(request, messages=messages))
                ) as events:
                    async for event in events:
                        if run.closed:
                            break
                        run.handle(event)
                        await asyncio.sleep(0)  # let client events (a cancel) in between chunks
                results = await self._tools.answer(run)
                if not results or run.closed:
                    break
                answered += results  # the brain goes on with them, in the same response
            run.complete()
            if run.response.conversation_id is not None:
                self._arm_idle()  # the user's silence from the end of this answer's playback counts
        except asyncio.CancelledError:
            run.finish("cancelled", ResponseStatusDetails(type="cancelled", reason="client_cancelled"))
            raise
        except Exception as exc:  # a crashed backend fails the response, not the session
            error_id = new_error_id()  # the client gets the id, never the exception's text
            log.exception("response %s failed (error id %s)", run.id, error_id)
            code = getattr(exc, "code", None)  # a BackendError's code (llm_http_error ...) is ours to tell
            code = code if isinstance(code, str) else "server_error"
            message = server_error_message("The response", error_id)
            run.finish(
                "failed",
                ResponseStatusDetails(
                    type="failed", error={"type": "server_error", "code": code, "message": message}
                ),
            )
        finally:
            self._runs.pop(run.id, None)
            if self._active is run:
                self._active = None

    def _configured_tools(self) -> list[Any]:
        return self.config.tools if isinstance(self.config, RealtimeSessionConfig) else []

    def _response_cancel(self, event: ResponseCancelEvent) -> None:
        run = self._runs.get(event.response_id) if event.response_id else self._active
        if run is None or run.closed:
            raise ProtocolError(
                "Cancellation failed: no active response found", code="response_cancel_not_active"
            )
        self._cancel(run, "client_cancelled")

    def _cancel(self, run: ResponseRun, reason: str) -> None:
        """State first (no late output can follow ``response.done``), then the task."""
        run.finish("cancelled", ResponseStatusDetails(type="cancelled", reason=reason))
        self._runs.pop(run.id, None)
        if self._active is run:
            self._active = None
        if run.task is not None:
            run.task.cancel()
