"""Turn latency of a running Palaver with the scripted LLM, and the real-time factors of ASR and TTS.

    .venv/bin/python bench/turn_latency.py [--turns 30]

Prints p50/p95/p99 of ``input_audio_buffer.committed`` → first ``response.output_audio.delta``
(client-side clock, over a real WebSocket with the stock ``openai`` SDK), then the real-time
factor (processing time / audio time) of the embedded ASR (pocketsphinx) and TTS (espeak-ng).
Only loopback addresses are used; every process started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openai import AsyncOpenAI
from tests.support.scripted_llm import ScriptedLLM
from tests.support.server import PalaverServer
from tests.support.speech import flite_speech, silence, to_rate

from palaver.backends.base import Transcript
from palaver.backends.stt.pocketsphinx import PocketsphinxSTT
from palaver.backends.tts.espeak import EspeakTTS

UTTERANCES = [
    "what is the weather in paris tomorrow",
    "please book a table for two at seven",
    "turn off the lights in the living room",
    "set an alarm for six thirty in the morning",
]
ANSWER = "Sure. I can help with that right away."


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(name: str, values_ms: list[float]) -> str:
    return (
        f"{name}: n={len(values_ms)} p50={percentile(values_ms, 0.5):.1f} ms "
        f"p95={percentile(values_ms, 0.95):.1f} ms p99={percentile(values_ms, 0.99):.1f} ms "
        f"max={max(values_ms):.1f} ms"
    )


async def measure_turns(server: PalaverServer, llm: ScriptedLLM, turns: int, realtime: bool) -> list[float]:
    speech = [
        to_rate(silence(100, 16000) + flite_speech(u) + silence(200, 16000), 16000, 24000) for u in UTTERANCES
    ]
    client = AsyncOpenAI(
        api_key="bench", base_url=server.http_url + "/v1", websocket_base_url=server.ws_base_url
    )
    latencies: list[float] = []
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
        for turn in range(turns):
            llm.push_text(ANSWER)
            wire = speech[turn % len(speech)]
            start = time.perf_counter()
            for n, i in enumerate(range(0, len(wire), 1920)):  # 40 ms chunks
                await conn.input_audio_buffer.append(audio=base64.b64encode(wire[i : i + 1920]).decode())
                if realtime:  # as a microphone would send them
                    await asyncio.sleep(max(0.0, start + (n + 1) * 0.04 - time.perf_counter()))
            await conn.input_audio_buffer.commit()
            await conn.response.create()
            committed_at: float | None = None
            first_audio: float | None = None
            async with asyncio.timeout(30):
                async for event in conn:
                    if event.type == "input_audio_buffer.committed":
                        committed_at = time.perf_counter()
                    elif event.type == "response.output_audio.delta" and first_audio is None:
                        first_audio = time.perf_counter()
                    elif event.type == "response.done":
                        break
            assert committed_at is not None and first_audio is not None
            latencies.append((first_audio - committed_at) * 1000)
    return latencies


def asr_rtf() -> float:
    stt = PocketsphinxSTT()
    stt.warm_up()
    audio = [silence(100, 16000) + flite_speech(u) + silence(100, 16000) for u in UTTERANCES]
    seconds = sum(len(a) / 2 / 16000 for a in audio)
    start = time.perf_counter()
    for pcm in audio:
        stream = stt.open_stream()
        for i in range(0, len(pcm), 1280):
            stream.push(pcm[i : i + 1280])
        result: Transcript = stream.finish()
        assert result.text
    return (time.perf_counter() - start) / seconds


def tts_rtf() -> tuple[float, float]:
    tts = EspeakTTS()
    first_chunk_ms: list[float] = []
    total_time = 0.0
    total_audio = 0.0
    for text in [*UTTERANCES, ANSWER] * 3:
        chunks: list[bytes] = []
        start = time.perf_counter()
        first: list[float] = []

        def sink(
            pcm: bytes, chunks: list[bytes] = chunks, first: list[float] = first, start: float = start
        ) -> bool:
            if not first:
                first.append((time.perf_counter() - start) * 1000)
            chunks.append(pcm)
            return True

        tts.synthesize(text, voice="alloy", speed=1.0, sink=sink)
        total_time += time.perf_counter() - start
        total_audio += sum(len(c) for c in chunks) / 2 / tts.sample_rate
        first_chunk_ms += first
    return total_time / total_audio, statistics.median(first_chunk_ms)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--burst", action="store_true", help="send each utterance as fast as possible")
    args = parser.parse_args()
    with ScriptedLLM() as llm:
        server = PalaverServer(env={"PALAVER_LLM_BASE_URL": llm.base_url, "PALAVER_LLM_MODEL": "scripted"})
        server.start()
        try:
            latencies = asyncio.run(measure_turns(server, llm, args.turns, realtime=not args.burst))
        finally:
            server.stop()
    pace = "burst" if args.burst else "real-time pace"
    print(summary(f"committed -> first audio delta (scripted LLM, embedded ASR+TTS, {pace})", latencies))
    print(f"ASR pocketsphinx real-time factor: {asr_rtf():.3f}")
    rtf, ttfa = tts_rtf()
    print(f"TTS espeak-ng real-time factor: {rtf:.4f} (median time to first chunk {ttfa:.2f} ms)")


if __name__ == "__main__":
    main()
