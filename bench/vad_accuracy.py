"""Print VAD frame accuracy in noise, with and without noise reduction, and the per-frame costs.

    python bench/vad_accuracy.py

The test signal is ``tests.support.noisy_speech.build_test_signal``: four flite utterances
(voices kal16, slt, rms, awb) separated by 1 s of silence, ground truth from the clean
signal's frame energy, seeded noise. Threshold 0.5. Needs flite (Debian package) and, for
Silero, onnxruntime + ``pip install --no-deps silero-vad``.
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

from tests.support.noisy_speech import CONDITIONS, FRAME, build_test_signal  # noqa: E402

from palaver.audio.noise import NoiseReducer, NoiseReductionMode  # noqa: E402
from palaver.backends.base import VoiceActivityDetector  # noqa: E402
from palaver.backends.vad.energy import EnergyVAD  # noqa: E402
from palaver.backends.vad.silero import SileroVAD  # noqa: E402

SEED = 0
THRESHOLD = 0.5
CHUNK = 640  # bytes: 20 ms at 16 kHz


def denoise(pcm: bytes, mode: NoiseReductionMode | None) -> tuple[bytes, list[float]]:
    """Run the reducer over ``pcm`` in 20 ms chunks; return the output and each call's seconds."""
    if mode is None:
        return pcm, []
    reducer = NoiseReducer(mode)
    out: list[bytes] = []
    times: list[float] = []
    for i in range(0, len(pcm), CHUNK):
        start = time.perf_counter()
        out.append(reducer.process(pcm[i : i + CHUNK]))
        times.append(time.perf_counter() - start)
    out.append(reducer.flush())
    return b"".join(out), times


def score(
    vad: VoiceActivityDetector, pcm: bytes, truth: list[bool]
) -> tuple[float, float, float, list[float]]:
    """Frame accuracy, speech recall, false-alarm rate and per-frame seconds."""
    stream = vad.open_stream()
    size = 2 * FRAME
    hits: list[bool] = []
    times: list[float] = []
    for i in range(len(truth)):
        frame = pcm[i * size : (i + 1) * size]
        start = time.perf_counter()
        p = stream.probability(frame)
        times.append(time.perf_counter() - start)
        hits.append(p >= THRESHOLD)
    pred = np.array(hits)
    ref = np.array(truth)
    return float(np.mean(pred == ref)), float(np.mean(pred[ref])), float(np.mean(pred[~ref])), times


def median_us(times: list[float]) -> float:
    return statistics.median(times) * 1e6


def main() -> None:
    vads: list[tuple[str, Callable[[], VoiceActivityDetector]]] = [
        ("silero", SileroVAD),
        ("energy", EnergyVAD),
    ]
    built = [(name, make()) for name, make in vads]
    modes: list[NoiseReductionMode | None] = [None, "near_field", "far_field"]
    _, truth = build_test_signal("clean", SEED)
    n = len(truth)
    print(f"{n} frames of {FRAME} samples ({n * FRAME / 16000:.1f} s), {100 * sum(truth) / n:.0f} % speech")
    print("| condition | noise reduction | VAD | frame accuracy | speech recall | false alarm |")
    print("|---|---|---|---|---|---|")
    vad_times: dict[str, list[float]] = {name: [] for name, _ in built}
    nr_times: dict[str, list[float]] = {}
    for condition in CONDITIONS:
        pcm, truth = build_test_signal(condition, SEED)
        for mode in modes:
            cleaned, times = denoise(pcm, mode)
            if mode is not None:
                nr_times.setdefault(mode, []).extend(times)
            for name, vad in built:
                acc, recall, false_alarm, times = score(vad, cleaned, truth)
                vad_times[name].extend(times)
                print(
                    f"| {condition} | {mode or 'off'} | {name} | {100 * acc:.1f} % "
                    f"| {100 * recall:.1f} % | {100 * false_alarm:.1f} % |"
                )
    print()
    for name, times in vad_times.items():
        p99 = 1e6 * np.percentile(times, 99)
        print(f"{name} VAD: median {median_us(times):.0f} µs per 32 ms frame (p99 {p99:.0f})")
    for mode_name, times in nr_times.items():
        print(
            f"noise reduction {mode_name}: median {median_us(times):.0f} µs per 20 ms chunk "
            f"(mean {1e6 * statistics.fmean(times):.0f}, p99 {1e6 * np.percentile(times, 99):.0f})"
        )


if __name__ == "__main__":
    main()
