"""What an engine produces for a response; the session turns these into wire events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from palaver.backends.base import ChatTool


@dataclass(frozen=True)
class EngineRequest:
    """A snapshot of everything one response needs; later session changes do not affect it."""

    messages: list[dict[str, Any]]
    tools: list[ChatTool] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    max_output_tokens: int | None = None
    audio: bool = True
    voice: str = "alloy"
    speed: float = 1.0


@dataclass(frozen=True)
class OutputText:
    """Text of the answer. In audio mode, the transcript of the audio that follows it."""

    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class OutputAudio:
    """16-bit mono PCM at ``sample_rate``."""

    pcm: bytes
    sample_rate: int
    kind: Literal["audio"] = "audio"


@dataclass(frozen=True)
class FunctionCallStart:
    call_id: str
    name: str
    kind: Literal["call_start"] = "call_start"


@dataclass(frozen=True)
class FunctionCallArguments:
    delta: str
    kind: Literal["call_args"] = "call_args"


@dataclass(frozen=True)
class FunctionCallEnd:
    kind: Literal["call_end"] = "call_end"


@dataclass(frozen=True)
class EngineFinished:
    """``reason`` is ``"stop"`` or ``"length"`` (max output tokens reached)."""

    reason: str
    text_input_tokens: int
    text_output_tokens: int
    #: The brain reported the input count itself (then it includes any images it was shown).
    input_counted_by_model: bool = False
    kind: Literal["finished"] = "finished"


EngineEvent = (
    OutputText | OutputAudio | FunctionCallStart | FunctionCallArguments | FunctionCallEnd | EngineFinished
)
