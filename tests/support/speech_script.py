"""Scripted streams of test speech with known speech boundaries, and sending them at real-time pace."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.support.speech import flite_speech, to_rate

RATE = 24000
CHUNK_MS = 40


@dataclass
class Script:
    """A stream of audio with the true speech spans (ms) of each turn."""

    pcm: bytes
    turns: list[tuple[float, float]]


def _speech(text: str) -> np.ndarray:
    """flite speech at 24 kHz, trimmed to where its energy says the speech is."""
    pcm = np.frombuffer(to_rate(flite_speech(text), 16000, RATE), dtype="<i2").astype(np.float64)
    frame = RATE // 100
    rms = np.sqrt(np.convolve(pcm**2, np.ones(frame) / frame, mode="same"))
    loud = np.nonzero(rms > 10 ** (-40 / 20) * 32768)[0]
    return pcm[loud[0] : loud[-1] + 1]


def build(parts: list[tuple[str, Any]], *, snr_db: float = 20.0, seed: int = 7) -> Script:
    """``parts``: ("pause", ms) or ("say", text) or ("turn", ...) markers; a turn spans its says."""
    pieces: list[np.ndarray] = []
    turns: list[tuple[float, float]] = []
    pos = 0
    turn_start: float | None = None
    for kind, value in parts:
        if kind == "pause":
            n = int(RATE * value / 1000)
            pieces.append(np.zeros(n))
        elif kind == "say":
            speech = _speech(value)
            if turn_start is None:
                turn_start = pos * 1000 / RATE
            pieces.append(speech)
            n = len(speech)
            turn_end = (pos + n) * 1000 / RATE
        elif kind == "end":
            assert turn_start is not None
            turns.append((turn_start, turn_end))
            turn_start = None
            n = 0
        pos += n
    clean = np.concatenate(pieces)
    speech_rms = np.sqrt(np.mean(np.concatenate([p for p in pieces if p.any()]) ** 2))
    noise = np.random.default_rng(seed).normal(0, speech_rms / 10 ** (snr_db / 20), len(clean))
    mixed = np.clip(clean + noise, -32768, 32767).astype("<i2")
    return Script(mixed.tobytes(), turns)


async def stream(conn: Any, pcm: bytes, *, realtime: bool = True) -> list[float]:
    """Append ``pcm`` (24 kHz) in 40 ms chunks; at real-time pace each chunk goes out when its
    last sample has "happened", as from a microphone. Returns each chunk's send time."""
    step = RATE * 2 * CHUNK_MS // 1000
    start = time.perf_counter()
    sent: list[float] = []
    for n, i in enumerate(range(0, len(pcm), step)):
        if realtime:
            await asyncio.sleep(max(0.0, start + (n + 1) * CHUNK_MS / 1000 - time.perf_counter()))
        sent.append(time.perf_counter())
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + step]).decode())
    return sent


def wall_at(sent: list[float], audio_ms: float) -> float:
    """The wall-clock moment ``audio_ms`` of a stream sent by :func:`stream` at real-time pace was spoken."""
    n = min(len(sent) - 1, int(audio_ms // CHUNK_MS))
    return sent[n] - ((n + 1) * CHUNK_MS - audio_ms) / 1000
