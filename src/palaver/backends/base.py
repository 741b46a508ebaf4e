"""Small protocols every model backend implements.

Speech backends are synchronous and CPU-bound: the engine runs them on worker threads
(never on the event loop). Chat backends are asynchronous streams (network I/O).
Errors are raised as :class:`BackendError`, marked retryable or not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from palaver.errors import PalaverError


class BackendError(PalaverError):
    """A model backend failed. ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False, code: str = "backend_error") -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code


class BackendUnavailable(BackendError):
    """A backend cannot start (missing library, missing weights): a clear startup error."""


# --------------------------------------------------------------------------- speech to text


@dataclass(frozen=True)
class Transcript:
    text: str
    audio_seconds: float
    #: Each word of ``text`` with the natural log of its probability, when the recogniser knows it.
    word_logprobs: tuple[tuple[str, float], ...] = ()


class SttStream(Protocol):
    """One utterance being recognised. Not thread-safe; used from one worker thread at a time."""

    def push(self, pcm: bytes) -> str | None:
        """Feed 16-bit mono PCM at the backend's ``sample_rate``.

        Returns the new partial hypothesis when it changed, else ``None``."""

    def finish(self) -> Transcript:
        """End the utterance and return the final transcript. The stream is then spent."""


class SpeechToText(Protocol):
    name: str
    sample_rate: int

    def open_stream(
        self,
        *,
        language: str | None = None,
        prompt: str | None = None,
        narrowband: bool = False,
        live: bool = False,
    ) -> SttStream:
        """Start an utterance. ``narrowband``: the audio was 8 kHz (telephone) before resampling.
        ``live``: partial results are shown to a user, so the final transcript must extend them
        (no rescoring pass that rewrites words already shown)."""


# --------------------------------------------------------------------------- voice activity


class VadStream(Protocol):
    """Per-session detector state (a recurrent model keeps context between frames)."""

    def probability(self, frame: bytes) -> float:
        """Speech probability of one frame: exactly ``frame_samples`` 16-bit mono samples."""

    def reset(self) -> None: ...


class VoiceActivityDetector(Protocol):
    name: str
    sample_rate: int
    frame_samples: int

    def open_stream(self) -> VadStream: ...


# --------------------------------------------------------------------------- text to speech

#: Called from the synthesis thread with each chunk of 16-bit mono PCM at the backend's rate.
#: Return ``False`` to abort synthesis (cancellation); the backend stops as soon as it can.
ChunkSink = Callable[[bytes], bool]


class TextToSpeech(Protocol):
    name: str
    sample_rate: int

    def synthesize(self, text: str, *, voice: str, speed: float, sink: ChunkSink) -> None:
        """Synthesize ``text``, delivering PCM chunks to ``sink`` as they are made. Blocking."""


# --------------------------------------------------------------------------- chat (the brain)


@dataclass(frozen=True)
class ChatTool:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ChatRequest:
    """An OpenAI Chat Completions request, already in that API's message format."""

    messages: list[dict[str, Any]]
    tools: list[ChatTool] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    max_tokens: int | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call. ``index`` tells parallel calls apart; id/name come first."""

    index: int
    call_id: str | None
    name: str | None
    arguments: str
    kind: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True)
class ChatUsage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class ChatFinished:
    reason: str  # "stop" | "length" | "tool_calls" | ...
    usage: ChatUsage | None
    kind: Literal["finished"] = "finished"


ChatEvent = TextDelta | ToolCallDelta | ChatFinished


class ChatModel(Protocol):
    name: str
    #: Whether the model takes image parts (OpenAI's vision message format).
    accepts_images: bool

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Stream the model's answer. Raises :class:`BackendError` on failure."""
