"""A recogniser that hears nothing, instantly: for measuring the server itself, and for agents
that only need turn-taking and audio (the transcript of every utterance is empty)."""

from __future__ import annotations

from palaver.backends.base import Transcript

SAMPLE_RATE = 16000


class NullStream:
    def __init__(self) -> None:
        self._samples = 0

    def push(self, pcm: bytes) -> str | None:
        self._samples += len(pcm) // 2
        return None

    def finish(self) -> Transcript:
        return Transcript(text="", audio_seconds=self._samples / SAMPLE_RATE)


class NullSTT:
    name = "null"
    sample_rate = SAMPLE_RATE

    def open_stream(
        self,
        *,
        language: str | None = None,
        prompt: str | None = None,
        narrowband: bool = False,
        live: bool = False,
    ) -> NullStream:
        return NullStream()
