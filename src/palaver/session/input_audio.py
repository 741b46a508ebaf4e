"""The input audio buffer and everything that listens to it.

Appended audio is decoded to 16 kHz PCM, cleaned (noise reduction, when configured), cut into
VAD frames and fed to the turn detector. The buffer keeps the audio since the last commit, both
as received (for the item) and as 16 kHz PCM (for recognition), indexed by one clock: milliseconds
of input audio since the session began (what ``audio_start_ms``/``audio_end_ms`` count).

With turn detection on, only speech is recognised (from the start of its prefix padding), and
the buffer is trimmed while nobody speaks, so memory and CPU stay flat however long a caller
stays silent. With turn detection off (manual turns), everything appended is recognised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from palaver.audio.formats import InputDecoder, wire_bytes_per_second
from palaver.audio.noise import NoiseReducer
from palaver.backends.base import VadStream, VoiceActivityDetector
from palaver.protocol.audio_config import NoiseReduction, SemanticVad, ServerVad
from palaver.protocol.ids import new_id
from palaver.session.transcriber import StreamingTranscriber
from palaver.turn.detector import BargeInGuard, SpeechStarted, SpeechStopped, TurnDetector, TurnEvent

_PCM_BYTES_PER_MS = 32  # 16 kHz, 16-bit
#: Frames quieter than this (RMS, dBFS) are not speech: the VAD model is not run on them, which
#: makes an idle line cheap. Conversational speech is -35 to -15 dBFS; even a faint onset is far
#: above this.
SILENCE_GATE_DBFS = -60.0
_GATE_SQUARE = (32768.0 * 10 ** (SILENCE_GATE_DBFS / 20)) ** 2
#: While nobody speaks, keep this much audio (the longest prefix padding a client may ask for is
#: well below it).
_IDLE_KEEP_MS = 1000


@dataclass
class Utterance:
    """Committed audio: the bytes as received, its span on the input clock, and its recognition."""

    item_id: str
    wire: bytes
    start_ms: int
    end_ms: int
    transcriber: StreamingTranscriber


class InputAudio:
    def __init__(
        self,
        *,
        format_type: str,
        stt_rate: int,
        vad: VoiceActivityDetector | None,
        turn_detection: ServerVad | SemanticVad | None,
        noise_reduction: NoiseReduction | None,
        new_transcriber: Callable[[str], StreamingTranscriber],
        barge_in: BargeInGuard | None = None,
    ) -> None:
        self.format_type = format_type
        self._wire_per_ms = wire_bytes_per_second(format_type) / 1000.0
        self._decoder = InputDecoder(format_type, stt_rate)
        self._noise = NoiseReducer(noise_reduction.type) if noise_reduction is not None else None
        self._vad = vad
        self._vad_stream: VadStream | None = vad.open_stream() if vad is not None else None
        self._frame_bytes = (vad.frame_samples * 2) if vad is not None else 0
        self._frame_ms = (vad.frame_samples * 1000 / vad.sample_rate) if vad is not None else 0.0
        self._detector: TurnDetector | None = None
        if turn_detection is not None and vad is not None:
            self._detector = TurnDetector(turn_detection, frame_ms=self._frame_ms, barge_in=barge_in)
        #: The id the next committed user item will get (named in speech_started already).
        self.pending_item_id = new_id("item")
        self._new_transcriber = new_transcriber
        self._transcriber = new_transcriber(self.pending_item_id)
        self._fed_ms = 0.0  # input clock position up to which the transcriber has its audio
        # The buffer: audio since the last commit, from ``_start_ms`` on the input clock.
        self._start_ms = 0.0
        self._wire = bytearray()
        self._pcm = bytearray()
        self._pcm_ms = 0.0  # input clock: 16 kHz PCM produced so far
        self._vad_pending = bytearray()
        self._vad_ms = 0.0  # input clock: end of the last VAD frame
        self._gated = False  # the last frame was below the silence gate

    # ------------------------------------------------------------------ state

    @property
    def manual(self) -> bool:
        return self._detector is None

    @property
    def in_speech(self) -> bool:
        return self._detector is not None and self._detector.in_speech

    @property
    def buffered_ms(self) -> float:
        return len(self._wire) / self._wire_per_ms

    @property
    def now_ms(self) -> float:
        """The input clock: milliseconds of audio appended this session."""
        return self._pcm_ms

    def configure_turns(
        self, turn_detection: ServerVad | SemanticVad | None, barge_in: BargeInGuard | None
    ) -> None:
        """Turn detection changes apply at once (as on OpenAI)."""
        if turn_detection is None or self._vad is None:
            self._detector = None
        elif self._detector is None:
            self._detector = TurnDetector(turn_detection, frame_ms=self._frame_ms, barge_in=barge_in)
        else:
            self._detector.configure(turn_detection)

    # ------------------------------------------------------------------ audio in

    def append(self, wire: bytes, *, assistant_speaking: bool = False) -> list[TurnEvent]:
        pcm = self._decoder.decode(wire)
        if self._noise is not None:
            pcm = self._noise.process(pcm)
        self._wire += wire
        self._pcm += pcm
        self._pcm_ms += len(pcm) / _PCM_BYTES_PER_MS
        if self._detector is not None and self._transcriber.partial is not None:
            self._detector.update_transcript(self._transcriber.partial)  # semantic VAD reads the words
        events = self._detect(pcm, assistant_speaking)
        if self.manual or self.in_speech:
            self._feed(self._pcm_ms)
        elif not events:
            self._trim_idle()
        return events

    def _detect(self, pcm: bytes, assistant_speaking: bool) -> list[TurnEvent]:
        if self._vad_stream is None:
            return []
        self._vad_pending += pcm
        events: list[TurnEvent] = []
        step = self._frame_bytes
        while len(self._vad_pending) >= step:
            frame = bytes(self._vad_pending[:step])
            del self._vad_pending[:step]
            probability = self._probability(frame)
            self._vad_ms += self._frame_ms
            if self._detector is None:
                continue
            for event in self._detector.push(
                probability, self._vad_ms, assistant_speaking=assistant_speaking
            ):
                if isinstance(event, SpeechStarted):
                    self._begin_utterance(event.audio_start_ms)
                events.append(event)
        return events

    def _probability(self, frame: bytes) -> float:
        assert self._vad_stream is not None
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        if float(np.dot(samples, samples)) < _GATE_SQUARE * len(samples):
            if not self._gated:
                self._vad_stream.reset()  # what follows the quiet starts afresh
                self._gated = True
            return 0.0
        self._gated = False
        return self._vad_stream.probability(frame)

    def _begin_utterance(self, start_ms: int) -> None:
        """Speech began: drop what came before its prefix padding and recognise from there."""
        start = max(float(start_ms), self._start_ms)
        self._drop_before(start)
        self._fed_ms = start

    def _feed(self, until_ms: float) -> None:
        if until_ms <= self._fed_ms:
            return
        lo = self._pcm_offset(self._fed_ms)
        hi = self._pcm_offset(until_ms)
        self._transcriber.feed(bytes(self._pcm[lo:hi]))
        self._fed_ms = until_ms

    def _trim_idle(self) -> None:
        keep_from = self._pcm_ms - _IDLE_KEEP_MS
        if keep_from > self._start_ms + _IDLE_KEEP_MS:  # trim in steps, not on every chunk
            self._drop_before(keep_from)
            self._fed_ms = max(self._fed_ms, keep_from)

    def _pcm_offset(self, ms: float) -> int:
        offset = int((ms - self._start_ms) * _PCM_BYTES_PER_MS)
        return max(0, min(len(self._pcm), offset - offset % 2))

    def _wire_offset(self, ms: float) -> int:
        offset = int((ms - self._start_ms) * self._wire_per_ms)
        width = 2 if self.format_type == "audio/pcm" else 1
        return max(0, min(len(self._wire), offset - offset % width))

    def _drop_before(self, ms: float) -> None:
        if ms <= self._start_ms:
            return
        del self._wire[: self._wire_offset(ms)]
        del self._pcm[: self._pcm_offset(ms)]
        self._start_ms = ms

    # ------------------------------------------------------------------ commit / clear

    def commit(self, *, end_ms: float | None = None) -> Utterance:
        """Take the buffered audio (up to ``end_ms``, default all) as one utterance and start afresh."""
        end = self._pcm_ms if end_ms is None else min(end_ms, self._pcm_ms)
        if self.manual:
            tail = self._decoder.flush()  # the resampler's look-ahead: nothing more is coming
            self._pcm += tail
            self._pcm_ms += len(tail) / _PCM_BYTES_PER_MS
            end = self._pcm_ms if end_ms is None else end
        self._feed(end)
        utterance = Utterance(
            item_id=self.pending_item_id,
            wire=bytes(self._wire[: self._wire_offset(end)]),
            start_ms=round(self._start_ms),
            end_ms=round(end),
            transcriber=self._transcriber,
        )
        self._drop_before(end)
        self.pending_item_id = new_id("item")
        self._transcriber = self._new_transcriber(self.pending_item_id)
        self._fed_ms = end
        if self._detector is not None:
            self._detector.reset()
        return utterance

    def clear(self) -> None:
        self._transcriber.discard()
        self._transcriber = self._new_transcriber(self.pending_item_id)
        self._drop_before(self._pcm_ms)
        self._fed_ms = self._pcm_ms
        if self._detector is not None:
            self._detector.reset()

    def close(self) -> None:
        self._transcriber.discard()


__all__ = ["InputAudio", "SpeechStarted", "SpeechStopped", "Utterance"]
