"""Pick and build the model backends from settings."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from palaver.backends.base import (
    BackendUnavailable,
    ChatModel,
    SpeechToText,
    TextToSpeech,
    VoiceActivityDetector,
)
from palaver.backends.llm.echo import EchoChat
from palaver.backends.llm.openai_compat import OpenAICompatibleChat
from palaver.backends.stt.pocketsphinx import PocketsphinxSTT
from palaver.backends.tts.espeak import EspeakTTS
from palaver.config import ConfigError, Settings
from palaver.egress import EgressPolicy
from palaver.session.transcriber import StreamSlots
from palaver.tools.policy import PolicyError, ToolPolicy, load_policy

log = logging.getLogger(__name__)


@dataclass
class Backends:
    stt: SpeechToText
    tts: TextToSpeech
    chat: ChatModel
    vad: VoiceActivityDetector
    executor: ThreadPoolExecutor
    #: The server-wide bound on live recognition streams.
    stt_slots: StreamSlots
    #: The operator's rules for tool calls.
    policy: ToolPolicy
    #: Where MCP servers may be (PALAVER_MCP_ALLOW, or the default for the bind address).
    egress: EgressPolicy

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def build_backends(settings: Settings) -> Backends:
    """Load the configured backends; a missing library or model is a clear startup error."""
    vad = build_vad(settings.vad)
    stt = build_stt(settings.stt, settings.stt_streams)
    tts = EspeakTTS()
    chat: ChatModel
    if settings.llm_base_url:
        chat = OpenAICompatibleChat(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            accepts_images=settings.llm_vision,
        )
    else:
        chat = EchoChat()
    executor = ThreadPoolExecutor(max_workers=settings.model_threads, thread_name_prefix="palaver-model")
    try:
        policy = load_policy(settings.tool_policy) if settings.tool_policy else ToolPolicy.allow_all()
    except PolicyError as exc:
        raise BackendUnavailable(f"PALAVER_TOOL_POLICY: {exc}") from exc
    try:
        egress = EgressPolicy.from_settings(settings)
    except ConfigError as exc:
        raise BackendUnavailable(str(exc)) from exc
    log.info("%s", egress.describe())
    return Backends(
        stt=stt,
        tts=tts,
        chat=chat,
        vad=vad,
        executor=executor,
        stt_slots=StreamSlots(settings.stt_streams),
        policy=policy,
        egress=egress,
    )


def build_stt(name: str, streams: int) -> SpeechToText:
    if name == "pocketsphinx":
        stt = PocketsphinxSTT(max_idle=streams)  # decoders are kept for reuse: loading one takes ~0.3 s
        stt.warm_up()
        return stt
    if name == "null":
        from palaver.backends.stt.null import NullSTT

        return NullSTT()
    raise BackendUnavailable(f"unknown PALAVER_STT={name!r}: choose 'pocketsphinx' or 'null'")


def build_vad(name: str) -> VoiceActivityDetector:
    if name == "silero":
        from palaver.backends.vad.silero import SileroVAD

        return SileroVAD()
    if name == "energy":
        from palaver.backends.vad.energy import EnergyVAD

        return EnergyVAD()
    raise BackendUnavailable(f"unknown PALAVER_VAD={name!r}: choose 'silero' or 'energy'")
