"""Session audio settings: formats, turn detection, transcription, noise reduction, voice."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag

from .bounds import (
    IDLE_TIMEOUT_MAX_MS,
    IDLE_TIMEOUT_MIN_MS,
    MAX_LIST_ITEMS,
    MAX_PREFIX_PADDING_MS,
    MAX_SILENCE_DURATION_MS,
    MAX_VOICE_CHARS,
    DescriptionText,
    LabelText,
)
from .wire import Omittable, WireModel, json_kind

#: Transcription model reported when a client turns transcription on without naming one.
DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-transcribe"
DEFAULT_VOICE = "alloy"


class PcmFormat(WireModel):
    """16-bit little-endian mono PCM at 24 kHz."""

    type: Literal["audio/pcm"] = "audio/pcm"
    rate: Literal[24000] = 24000


class PcmuFormat(WireModel):
    """G.711 µ-law, 8 kHz."""

    type: Literal["audio/pcmu"] = "audio/pcmu"


class PcmaFormat(WireModel):
    """G.711 A-law, 8 kHz."""

    type: Literal["audio/pcma"] = "audio/pcma"


AudioFormat = Annotated[PcmFormat | PcmuFormat | PcmaFormat, Field(discriminator="type")]


class ServerVad(WireModel):
    """Volume-based turn detection (defaults as reported by OpenAI's server)."""

    type: Literal["server_vad"] = "server_vad"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    prefix_padding_ms: int = Field(default=300, ge=0, le=MAX_PREFIX_PADDING_MS)
    silence_duration_ms: int = Field(default=200, ge=0, le=MAX_SILENCE_DURATION_MS)
    idle_timeout_ms: int | None = Field(default=None, ge=IDLE_TIMEOUT_MIN_MS, le=IDLE_TIMEOUT_MAX_MS)
    create_response: bool = True
    interrupt_response: bool = True


class SemanticVad(WireModel):
    """Model-based end-of-turn detection."""

    type: Literal["semantic_vad"] = "semantic_vad"
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    create_response: bool = True
    interrupt_response: bool = True


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class InputTranscription(WireModel):
    """Asynchronous transcription of user audio (``delay``/``keywords``/``languages`` are 2026 fields)."""

    model: LabelText = DEFAULT_TRANSCRIPTION_MODEL
    language: LabelText | None = None
    prompt: DescriptionText | None = None
    delay: Omittable[Literal["minimal", "low", "medium", "high", "xhigh"]] = None
    keywords: Omittable[Annotated[list[LabelText], Field(max_length=MAX_LIST_ITEMS)]] = None
    languages: Omittable[Annotated[list[LabelText], Field(max_length=MAX_LIST_ITEMS)]] = None


class NoiseReduction(WireModel):
    """Input noise reduction (``strength`` is a 2026 field)."""

    type: Literal["near_field", "far_field"]
    strength: Omittable[Annotated[float, Field(ge=0.0, le=1.0)]] = None


class VoiceId(WireModel):
    """A custom voice reference, ``{"id": "voice_1234"}`` (2026)."""

    id: Annotated[str, Field(max_length=MAX_VOICE_CHARS)]


Voice = Annotated[
    Annotated[str, Field(max_length=MAX_VOICE_CHARS), Tag("string")] | Annotated[VoiceId, Tag("object")],
    Discriminator(json_kind),
]


def voice_name(voice: str | VoiceId) -> str:
    """The voice name or custom voice id."""
    return voice if isinstance(voice, str) else voice.id


class AudioInputConfig(WireModel):
    """``audio.input`` of a session."""

    format: AudioFormat = Field(default_factory=PcmFormat)
    transcription: InputTranscription | None = None
    noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = Field(default_factory=ServerVad)


class AudioOutputConfig(WireModel):
    """``audio.output`` of a realtime session."""

    format: AudioFormat = Field(default_factory=PcmFormat)
    voice: Voice = DEFAULT_VOICE
    speed: float = Field(default=1.0, ge=0.25, le=1.5)


class AudioConfig(WireModel):
    """``audio`` of a realtime session."""

    input: AudioInputConfig = Field(default_factory=AudioInputConfig)
    output: AudioOutputConfig = Field(default_factory=AudioOutputConfig)


class TranscriptionAudioInputConfig(AudioInputConfig):
    """``audio.input`` of a transcription session: transcription is on by default."""

    transcription: InputTranscription | None = Field(default_factory=InputTranscription)


class TranscriptionAudioConfig(WireModel):
    """``audio`` of a transcription session (input only)."""

    input: TranscriptionAudioInputConfig = Field(default_factory=TranscriptionAudioInputConfig)
