"""One response from ``response.created`` to its single ``response.done``.

A run turns engine events into wire events. Every output item it opens is closed (``*.done``)
exactly once, and once the run is closed (completed, cancelled, failed) nothing more of it
reaches the client: cancellation is a state change first, task cancellation second.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from palaver.audio.formats import OutputEncoder, wire_duration_ms
from palaver.engine.events import (
    EngineEvent,
    EngineFinished,
    FunctionCallArguments,
    FunctionCallEnd,
    FunctionCallStart,
    OutputAudio,
    OutputText,
)
from palaver.protocol.ids import new_id
from palaver.protocol.items import (
    FunctionCallItem,
    McpApprovalRequestItem,
    McpCallError,
    McpCallItem,
    McpToolExecutionError,
    MessageItem,
    OutputAudioContent,
    OutputTextContent,
)
from palaver.protocol.responses import RealtimeResponse, ResponseStatusDetails, Usage
from palaver.protocol.server_events import (
    ConversationItemAddedEvent,
    ConversationItemDoneEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDoneEvent,
    ResponseMcpCallCompletedEvent,
    ResponseMcpCallFailedEvent,
    ResponseMcpCallInProgressEvent,
    ResponseOutputAudioDeltaEvent,
    ResponseOutputAudioDoneEvent,
    ResponseOutputAudioTranscriptDeltaEvent,
    ResponseOutputAudioTranscriptDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputTextDeltaEvent,
    ResponseOutputTextDoneEvent,
    ResponsePart,
    ServerEvent,
)
from palaver.session.conversation import Conversation, StoredAudio
from palaver.tools.policy import Decision

OutputItem = MessageItem | FunctionCallItem | McpCallItem | McpApprovalRequestItem

#: Output audio token estimate (OpenAI bills roughly 20 tokens per second of generated audio).
AUDIO_OUTPUT_TOKENS_PER_SECOND = 20


@dataclass
class _OpenMessage:
    item: MessageItem
    output_index: int
    text: list[str] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    marks: list[tuple[float, str]] = field(default_factory=list)  # transcript piece -> its audio start
    encoder: OutputEncoder | None = None


@dataclass
class _OpenCall:
    item: FunctionCallItem
    output_index: int
    arguments: list[str] = field(default_factory=list)


@dataclass
class McpCallSlot:
    """An MCP call the brain made in this response: executed by the session after the round.

    ``item`` is an ``mcp_call`` already announced (``output_item.added``), or ``None`` while an
    approval is pending (then ``approval`` is the request item, announced and done)."""

    server_label: str
    name: str
    arguments: str
    item: McpCallItem | None = None
    output_index: int = -1
    approval: McpApprovalRequestItem | None = None


@dataclass
class _OpenMcp:
    slot: McpCallSlot
    arguments: list[str] = field(default_factory=list)


class ResponseRun:
    def __init__(
        self,
        *,
        response: RealtimeResponse,
        emit: Callable[[ServerEvent], None],
        conversation: Conversation | None,
        audio_mode: bool,
        output_format: str,
        on_audio: Callable[[str, float], None],
        image_tokens: int = 0,
        judge: Callable[[str, str], Decision | None] | None = None,
        mcp_tool: Callable[[str], tuple[str, str, bool] | None] | None = None,
    ) -> None:
        self.response = response
        self._emit = emit
        self._conversation = conversation  # None for out-of-band responses
        self.audio_mode = audio_mode
        self._output_format = output_format
        self._on_audio = on_audio
        self._image_tokens = image_tokens
        self._judge = judge
        #: Function calls the policy refused in the current round (the session answers them).
        self.refused: list[tuple[FunctionCallItem, Decision]] = []
        #: ``function name -> (server_label, tool, needs approval)`` for the MCP tools the brain sees.
        self._mcp_tool = mcp_tool
        #: MCP calls of the current round, for the session to execute.
        self.mcp_calls: list[McpCallSlot] = []
        self._open_mcp: list[McpCallSlot] = []  # announced mcp_call items not yet done
        self._open: _OpenMessage | _OpenCall | _OpenMcp | None = None
        self._finish_reason = "stop"
        self._text_in = 0
        self._text_out = 0
        self._audio_out_ms = 0.0
        self.closed = False
        self.task: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        assert self.response.id is not None
        return self.response.id

    def send(self, event: ServerEvent) -> None:
        if not self.closed:
            self._emit(event)

    # ------------------------------------------------------------------ engine events

    def handle(self, event: EngineEvent) -> None:
        if self.closed:
            return
        if isinstance(event, OutputText):
            self._text(event.text)
        elif isinstance(event, OutputAudio):
            self._audio(event)
        elif isinstance(event, FunctionCallStart):
            self._close_open("completed")
            mcp = self._mcp_tool(event.name) if self._mcp_tool is not None else None
            if mcp is not None:
                self._start_mcp(*mcp)
            else:
                self._start_call(event)
        elif isinstance(event, FunctionCallArguments):
            if isinstance(self._open, _OpenMcp):
                self._mcp_arguments(event.delta)
            else:
                self._call_arguments(event.delta)
        elif isinstance(event, FunctionCallEnd):
            self._close_open("completed")
        elif isinstance(event, EngineFinished):  # one per round of the brain: usage adds up
            self._finish_reason = event.reason
            text_in = event.text_input_tokens
            if event.input_counted_by_model:  # its count includes the images: report them apart
                text_in = max(0, text_in - self._image_tokens)
            self._text_in += text_in
            self._text_out += event.text_output_tokens

    def _message(self) -> _OpenMessage:
        if isinstance(self._open, _OpenMessage):
            return self._open
        self._close_open("completed")
        item = MessageItem(
            id=new_id("item"), type="message", status="in_progress", role="assistant", content=[]
        )
        index = len(self.response.output)
        self.response.output.append(item)
        opened = _OpenMessage(item=item, output_index=index)
        if self.audio_mode:
            opened.encoder = None  # made on the first chunk, when the source rate is known
        self._open = opened
        self._item_added(item, index)
        part = (
            ResponsePart(type="audio", transcript="")
            if self.audio_mode
            else ResponsePart(type="text", text="")
        )
        self.send(
            ResponseContentPartAddedEvent(
                response_id=self.id, item_id=item.id, output_index=index, content_index=0, part=part
            )
        )
        if self.audio_mode:
            item.content.append(OutputAudioContent(transcript=""))
            if self._conversation is not None:
                self._conversation.set_audio(
                    item.id or "", StoredAudio(self._output_format, opened.audio, opened.marks)
                )
        else:
            item.content.append(OutputTextContent(text=""))
        return opened

    def _item_added(self, item: OutputItem, index: int) -> None:
        self.send(ResponseOutputItemAddedEvent(response_id=self.id, output_index=index, item=item))
        if self._conversation is not None:
            previous = self._conversation.insert(item, None)
            self.send(ConversationItemAddedEvent(previous_item_id=previous, item=item))

    def _text(self, text: str) -> None:
        if not text:
            return
        msg = self._message()
        msg.text.append(text)
        if self.audio_mode:
            msg.marks.append((wire_duration_ms(self._output_format, len(msg.audio)), text))
        ids = {"response_id": self.id, "item_id": msg.item.id or "", "output_index": msg.output_index}
        if self.audio_mode:
            self.send(ResponseOutputAudioTranscriptDeltaEvent(**ids, content_index=0, delta=text))
        else:
            self.send(ResponseOutputTextDeltaEvent(**ids, content_index=0, delta=text))

    def _audio(self, chunk: OutputAudio) -> None:
        if not self.audio_mode:
            return
        msg = self._message()
        if msg.encoder is None:
            msg.encoder = OutputEncoder(self._output_format, chunk.sample_rate)
        self._send_audio(msg, msg.encoder.encode(chunk.pcm))

    def _send_audio(self, msg: _OpenMessage, wire: bytes) -> None:
        if not wire:
            return
        msg.audio += wire
        duration = wire_duration_ms(self._output_format, len(wire))
        self._audio_out_ms += duration
        self._on_audio(msg.item.id or "", duration)
        self.send(
            ResponseOutputAudioDeltaEvent(
                response_id=self.id,
                item_id=msg.item.id or "",
                output_index=msg.output_index,
                content_index=0,
                delta=base64.b64encode(wire).decode("ascii"),
            )
        )

    def _start_call(self, event: FunctionCallStart) -> None:
        item = FunctionCallItem(
            id=new_id("item"),
            type="function_call",
            status="in_progress",
            call_id=event.call_id,
            name=event.name,
            arguments="",
        )
        index = len(self.response.output)
        self.response.output.append(item)
        self._open = _OpenCall(item=item, output_index=index)
        self._item_added(item, index)

    def _call_arguments(self, delta: str) -> None:
        call = self._open
        if not isinstance(call, _OpenCall) or not delta:
            return
        call.arguments.append(delta)
        self.send(
            ResponseFunctionCallArgumentsDeltaEvent(
                response_id=self.id,
                item_id=call.item.id or "",
                output_index=call.output_index,
                call_id=call.item.call_id or "",
                delta=delta,
            )
        )

    # ------------------------------------------------------------------ MCP calls

    def _start_mcp(self, server_label: str, tool: str, needs_approval: bool) -> None:
        slot = McpCallSlot(server_label=server_label, name=tool, arguments="")
        if not needs_approval:  # announced now; an approval-bound call waits for its arguments
            self.announce_mcp_call(slot)
        self._open = _OpenMcp(slot=slot)

    def announce_mcp_call(self, slot: McpCallSlot, approval_request_id: str | None = None) -> None:
        """``output_item.added`` (+ ``conversation.item.added``) for the slot's ``mcp_call`` item."""
        slot.item = McpCallItem(
            id=new_id("item"),
            server_label=slot.server_label,
            name=slot.name,
            arguments="",
            approval_request_id=approval_request_id,
        )
        slot.output_index = len(self.response.output)
        self.response.output.append(slot.item)
        self._open_mcp.append(slot)
        self._item_added(slot.item, slot.output_index)

    def _mcp_arguments(self, delta: str) -> None:
        opened = self._open
        assert isinstance(opened, _OpenMcp)
        opened.arguments.append(delta)
        slot = opened.slot
        if slot.item is not None and delta:
            self.send(
                ResponseMcpCallArgumentsDeltaEvent(
                    response_id=self.id,
                    item_id=slot.item.id or "",
                    output_index=slot.output_index,
                    delta=delta,
                )
            )

    def _end_mcp_arguments(self, opened: _OpenMcp) -> None:
        slot = opened.slot
        slot.arguments = "".join(opened.arguments)
        if slot.item is None:  # approval first: the request carries the full arguments
            request = McpApprovalRequestItem(
                id=new_id("item"), server_label=slot.server_label, name=slot.name, arguments=slot.arguments
            )
            index = len(self.response.output)
            self.response.output.append(request)
            self._item_added(request, index)
            self._item_done(request, index)
            slot.approval = request
        else:
            self.mcp_arguments_done(slot)
        self.mcp_calls.append(slot)

    def mcp_arguments_done(self, slot: McpCallSlot) -> None:
        assert slot.item is not None
        slot.item.arguments = slot.arguments
        self.send(
            ResponseMcpCallArgumentsDoneEvent(
                response_id=self.id,
                item_id=slot.item.id or "",
                output_index=slot.output_index,
                arguments=slot.arguments,
            )
        )

    def mcp_call_in_progress(self, slot: McpCallSlot) -> None:
        assert slot.item is not None
        self.send(ResponseMcpCallInProgressEvent(item_id=slot.item.id or "", output_index=slot.output_index))

    def mcp_call_done(self, slot: McpCallSlot, *, output: str | None, error: McpCallError | None) -> None:
        """The call's outcome: ``mcp_call.completed`` or ``.failed``, then the item's ``*.done``."""
        item = slot.item
        assert item is not None
        if slot not in self._open_mcp:
            return
        self._open_mcp.remove(slot)
        item.output, item.error = output, error
        event_type = ResponseMcpCallCompletedEvent if error is None else ResponseMcpCallFailedEvent
        self.send(event_type(item_id=item.id or "", output_index=slot.output_index))
        self._item_done(item, slot.output_index)

    # ------------------------------------------------------------------ closing

    def _close_open(self, status: str, *, flush: bool = True) -> None:
        """Close the open item with ``status`` (completed/incomplete); ``flush``: send held-back audio."""
        opened, self._open = self._open, None
        if opened is None:
            return
        if isinstance(opened, _OpenCall):
            self._close_call(opened, status)
        elif isinstance(opened, _OpenMcp):
            self._end_mcp_arguments(opened)
        else:
            self._close_message(opened, status, flush=flush)

    def _close_call(self, call: _OpenCall, status: str) -> None:
        item = call.item
        item.arguments = "".join(call.arguments)
        if status == "completed" and self._judge is not None:
            decision = self._judge(item.name, item.arguments)
            if decision is not None and not decision.allowed:
                # Refused by the operator's policy: the client must not run it (an incomplete
                # call is not run by the SDKs); the brain gets the refusal and carries on.
                self.refused.append((item, decision))
                status = "refused"
        item.status = "completed" if status == "completed" else "incomplete"
        if status in ("completed", "refused"):
            self.send(
                ResponseFunctionCallArgumentsDoneEvent(
                    response_id=self.id,
                    item_id=item.id or "",
                    output_index=call.output_index,
                    call_id=item.call_id or "",
                    name=item.name,
                    arguments=item.arguments,
                )
            )
        self._item_done(item, call.output_index)

    def _close_message(self, msg: _OpenMessage, status: str, *, flush: bool) -> None:
        item = msg.item
        text = "".join(msg.text)
        ids = {
            "response_id": self.id,
            "item_id": item.id or "",
            "output_index": msg.output_index,
            "content_index": 0,
        }
        if self.audio_mode:
            if msg.encoder is not None and flush:
                self._send_audio(msg, msg.encoder.flush())
            item.content[0] = OutputAudioContent(transcript=text)
            self.send(ResponseOutputAudioDoneEvent(**ids))
            self.send(ResponseOutputAudioTranscriptDoneEvent(**ids, transcript=text))
            part = ResponsePart(type="audio", transcript=text)
        else:
            item.content[0] = OutputTextContent(text=text)
            self.send(ResponseOutputTextDoneEvent(**ids, text=text))
            part = ResponsePart(type="text", text=text)
        self.send(ResponseContentPartDoneEvent(**ids, part=part))
        item.status = "completed" if status == "completed" else "incomplete"
        self._item_done(item, msg.output_index)

    def _item_done(self, item: OutputItem, index: int) -> None:
        self.send(ResponseOutputItemDoneEvent(response_id=self.id, output_index=index, item=item))
        if self._conversation is not None and item.id is not None and item.id in self._conversation:
            previous = self._conversation.previous_of(item.id)
            self.send(ConversationItemDoneEvent(previous_item_id=previous, item=item))

    def complete(self) -> None:
        if self._finish_reason == "length":
            self.finish("incomplete", ResponseStatusDetails(type="incomplete", reason="max_output_tokens"))
        else:
            self.finish("completed", None)

    def finish(self, status: str, details: ResponseStatusDetails | None) -> None:
        """Close every open item and send the one ``response.done``. Idempotent."""
        if self.closed:
            return
        self._close_open(
            "completed" if status == "completed" else "incomplete",
            flush=status in ("completed", "incomplete"),
        )
        for slot in list(self._open_mcp):  # cut short before they ran
            error = McpToolExecutionError(message=f"Not run: the response was {status}.")
            self.mcp_call_done(slot, output=None, error=error)
        self.response.status = status  # type: ignore[assignment]
        self.response.status_details = details
        audio_tokens = math.ceil(self._audio_out_ms / 1000 * AUDIO_OUTPUT_TOKENS_PER_SECOND)
        self.response.usage = Usage.of(
            text_in=self._text_in,
            audio_in=0,
            text_out=self._text_out,
            audio_out=audio_tokens,
            image_in=self._image_tokens,
        )
        self.send(ResponseDoneEvent(response=self.response))
        self.closed = True
