"""Between a session and a phone line's media: audio both ways and the output buffer events.

The session speaks the Realtime wire formats; the line speaks the codec its SDP settled
(G.711 μ-law or A-law at 8 kHz). When they match (the default for calls) audio passes through
untouched; when a client has chosen another session format, audio is converted here.

The line plays assistant audio at real time (server-side playout). This module turns its
progress into ``output_audio_buffer.started`` / ``stopped`` / ``cleared`` events, hands the
session's audio deltas to it (they are not forwarded to sideband observers: the audio is on the
line), and clears it when the session says the caller barged in.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Protocol

from palaver.audio.formats import InputDecoder, OutputEncoder, wire_rate
from palaver.protocol.server_events import (
    OutputAudioBufferClearedEvent,
    OutputAudioBufferStartedEvent,
    OutputAudioBufferStoppedEvent,
    ResponseOutputAudioDeltaEvent,
    ServerEvent,
)

__all__ = ["LineMedia", "LinePlayer", "line_format"]

_CODEC_FORMATS = {"PCMU": "audio/pcmu", "PCMA": "audio/pcma"}


def line_format(encoding: str) -> str:
    """The Realtime wire format of a line codec (``PCMU`` → ``audio/pcmu``)."""
    try:
        return _CODEC_FORMATS[encoding.upper()]
    except KeyError:
        raise ValueError(f"no Realtime audio format for codec {encoding!r}") from None


class LinePlayer(Protocol):
    """What plays assistant audio to the caller at real time (the RTP paced sender)."""

    def play(self, audio: bytes, tag: str) -> None: ...

    def clear(self) -> None: ...


class _Converter:
    """Wire format A → wire format B, streaming; identity when they are the same."""

    def __init__(self, source: str, target: str) -> None:
        self.source, self.target = source, target
        self._same = source == target
        if not self._same:
            self._decode = InputDecoder(source, wire_rate(target))
            self._encode = OutputEncoder(target, wire_rate(target))

    def __call__(self, audio: bytes) -> bytes:
        if self._same:
            return audio
        return self._encode.encode(self._decode.decode(audio))


class LineMedia:
    """One call's media glue. ``forward`` receives the events meant for the call's observers;
    ``player`` gets the caller's audio; ``session_input_format()`` / ``session_output_format()`` read
    the session's current formats (a client may change them mid-call)."""

    def __init__(
        self,
        line_format: str,
        player: LinePlayer,
        forward: Callable[[ServerEvent], None],
        *,
        session_input_format: Callable[[], str],
        session_output_format: Callable[[], str],
    ) -> None:
        self.line_format = line_format
        self._player = player
        self._forward = forward
        self._input_format = session_input_format
        self._output_format = session_output_format
        self._inbound = _Converter(line_format, line_format)
        self._outbound = _Converter(line_format, line_format)
        self._playing: str | None = None  # the response whose audio the caller hears now
        self._queued: str | None = None  # the last response handed to the player

    # ------------------------------------------------------------------ session → line

    def emit(self, event: ServerEvent) -> None:
        """The session's ``emit``: audio goes to the line, everything else to the observers."""
        if isinstance(event, ResponseOutputAudioDeltaEvent):
            fmt = self._output_format()
            if self._outbound.source != fmt:
                self._outbound = _Converter(fmt, self.line_format)
            audio = self._outbound(base64.b64decode(event.delta))
            if audio:
                self._queued = event.response_id
                self._player.play(audio, event.response_id)
            return
        self._forward(event)

    def clear(self) -> None:
        """Barge-in or ``output_audio_buffer.clear``: drop what the caller has not heard yet."""
        self._player.clear()
        response_id = self._playing or self._queued
        self._playing = self._queued = None
        if response_id is not None:
            self._forward(OutputAudioBufferClearedEvent(response_id=response_id))

    # ------------------------------------------------------------------ line → session

    def from_line(self, audio: bytes) -> bytes:
        """The caller's audio in the session's input format."""
        fmt = self._input_format()
        if self._inbound.target != fmt:
            self._inbound = _Converter(self.line_format, fmt)
        return self._inbound(audio)

    def started(self, tag: str) -> None:
        """The player sent the first audio of response ``tag``."""
        self._playing = tag
        self._forward(OutputAudioBufferStartedEvent(response_id=tag))

    def stopped(self, tag: str) -> None:
        """The player ran out of audio after response ``tag``."""
        if self._playing == tag:
            self._playing = None
        if self._queued == tag:
            self._queued = None
        self._forward(OutputAudioBufferStoppedEvent(response_id=tag))
