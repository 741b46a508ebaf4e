"""Print the cost of palaver's speech path: resampling, G.711, pocketsphinx STT, espeak-ng TTS.

    python bench/speech_backends.py

Needs flite (Debian package) for the STT input speech.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.support.speech import flite_speech, silence, word_error_rate  # noqa: E402

from palaver.audio.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from palaver.audio.resample import StreamResampler  # noqa: E402
from palaver.backends.stt.pocketsphinx import PocketsphinxSTT  # noqa: E402
from palaver.backends.tts.espeak import EspeakTTS  # noqa: E402

SENTENCE = "Please remind me to call my sister tomorrow morning about the dinner plans for Saturday."
RATE_PAIRS = [(24000, 16000), (16000, 24000), (22050, 24000), (8000, 16000), (48000, 16000), (24000, 8000)]
STT_TEXTS = [
    "what is the weather in paris tomorrow",
    "turn off the lights in the living room",
    "set an alarm for six thirty in the morning",
    SENTENCE.lower().rstrip("."),
]


def per_call_us(fn: Callable[[], object], repeat: int = 2000) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e6


def bench_audio() -> None:
    print("audio (per 20 ms chunk)")
    rng = np.random.default_rng(0)
    for src, dst in [
        (24000, 16000),
        (16000, 24000),
        (22050, 24000),
        (8000, 16000),
        (48000, 16000),
        (24000, 8000),
    ]:
        chunk = rng.integers(-10000, 10000, size=src // 50).astype(np.int16)
        r = StreamResampler(src, dst)
        cost = per_call_us(lambda r=r, c=chunk: r.process(c))
        print(f"  resample {src:>5} -> {dst:>5}: {cost:6.1f} us  (taps {r.taps})")
    pcm8k = rng.integers(-10000, 10000, size=160).astype(np.int16)
    codes = ulaw_encode(pcm8k)
    print(f"  u-law encode 160 samples: {per_call_us(lambda: ulaw_encode(pcm8k)):6.1f} us")
    print(f"  u-law decode 160 bytes:   {per_call_us(lambda: ulaw_decode(codes)):6.1f} us")


def bench_stt() -> None:
    print("pocketsphinx (16 kHz, 20 ms pushes)")
    stt = PocketsphinxSTT()
    start = time.perf_counter()
    stt.warm_up()
    print(f"  decoder load: {(time.perf_counter() - start) * 1000:.0f} ms")
    total_audio = total_time = 0.0
    finishes, pushes = [], []
    for text in STT_TEXTS:
        pcm = silence(250, 16000) + flite_speech(text) + silence(250, 16000)
        start = time.perf_counter()
        stream = stt.open_stream()
        for i in range(0, len(pcm), 640):
            t0 = time.perf_counter()
            stream.push(pcm[i : i + 640])
            pushes.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = stream.finish()
        finishes.append(time.perf_counter() - t0)
        total_time += time.perf_counter() - start
        total_audio += result.audio_seconds
        print(f"  WER {word_error_rate(text, result.text):.2f}  {result.text!r}")
    print(f"  real-time factor: {total_time / total_audio:.3f}  ({total_audio:.1f} s of audio)")
    print(
        f"  push (20 ms): median {statistics.median(pushes) * 1000:.2f} ms, "
        f"p95 {np.percentile(pushes, 95) * 1000:.2f} ms"
    )
    print(f"  finish: median {statistics.median(finishes) * 1000:.0f} ms, max {max(finishes) * 1000:.0f} ms")


def bench_tts() -> None:
    print(f"espeak-ng (15-word sentence, {len(SENTENCE.split())} words)")
    start = time.perf_counter()
    tts = EspeakTTS()
    print(f"  init: {(time.perf_counter() - start) * 1000:.1f} ms, sample rate {tts.sample_rate}")
    ttfc, rtf = [], []
    audio = 0.0
    for run in range(8):
        first: list[float] = []
        nbytes = [0]

        def sink(chunk: bytes, first: list[float] = first, nbytes: list[int] = nbytes) -> bool:
            if not first:
                first.append(time.perf_counter())
            nbytes[0] += len(chunk)
            return True

        start = time.perf_counter()
        tts.synthesize(SENTENCE, voice="alloy", speed=1.0, sink=sink)
        elapsed = time.perf_counter() - start
        audio = nbytes[0] / 2 / tts.sample_rate
        if run:
            ttfc.append(first[0] - start)
            rtf.append(elapsed / audio)
    print(
        f"  audio {audio:.2f} s; time to first chunk: median {statistics.median(ttfc) * 1000:.2f} ms; "
        f"real-time factor: median {statistics.median(rtf):.4f}"
    )


if __name__ == "__main__":
    bench_audio()
    bench_stt()
    bench_tts()
