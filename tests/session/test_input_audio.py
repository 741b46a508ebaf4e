"""The input buffer: the silence gate in front of the VAD model, and trimming while idle."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from palaver.protocol.audio_config import ServerVad
from palaver.session.input_audio import InputAudio
from palaver.session.transcriber import StreamingTranscriber
from tests.session.test_session_invariants import FakeSTT


class CountingStream:
    def __init__(self) -> None:
        self.calls = 0
        self.resets = 0

    def probability(self, frame: bytes) -> float:
        self.calls += 1
        return 0.9

    def reset(self) -> None:
        self.resets += 1


class CountingVAD:
    name = "counting"
    sample_rate = 16000
    frame_samples = 512

    def __init__(self) -> None:
        self.stream = CountingStream()

    def open_stream(self) -> CountingStream:
        return self.stream


def level(ms: int, dbfs: float) -> bytes:
    rng = np.random.default_rng(0)
    return (rng.normal(0, 32768 * 10 ** (dbfs / 20), 24 * ms)).astype("<i2").tobytes()


def make(vad: CountingVAD) -> InputAudio:
    executor = ThreadPoolExecutor(1)
    return InputAudio(
        format_type="audio/pcm",
        stt_rate=16000,
        vad=vad,
        turn_detection=ServerVad(create_response=False),
        noise_reduction=None,
        new_transcriber=lambda _id: StreamingTranscriber(FakeSTT(), executor),
    )


async def test_quiet_frames_skip_the_model_and_reset_it_once() -> None:
    vad = CountingVAD()
    audio = make(vad)
    audio.append(level(640, -75))  # 20 frames of near-silence
    assert vad.stream.calls == 0 and vad.stream.resets == 1
    audio.append(level(640, -30))  # speech level: the model runs on every frame
    assert vad.stream.calls >= 19
    audio.append(level(320, -75))
    assert vad.stream.resets == 2
    audio.close()


async def test_idle_buffer_is_trimmed() -> None:
    vad = CountingVAD()
    audio = make(vad)
    for _ in range(50):
        audio.append(level(100, -75))  # five seconds of nothing
    assert audio.buffered_ms <= 2100
    assert audio.now_ms >= 4990
