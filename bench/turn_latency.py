"""Turn latency of a running Palaver, over real WebSockets with the stock ``openai`` SDK.

    .venv/bin/python bench/turn_latency.py [--turns 15]

Prints p50/p95/p99 (client-side clock) of:

  T0  input_audio_buffer.committed -> first audio delta (manual commit, scripted LLM, embedded ASR+TTS)
  P1  speech_stopped -> first audio delta with instant backends (null ASR, echo brain, espeak-ng)
  P2  barge-in: speech onset -> last audio delta of the interrupted response (echo guard off and on)
  P3  end of speech -> first audio delta on the embedded pipeline (pocketsphinx, echo, espeak-ng;
      server VAD with silence_duration_ms 200)

then the real-time factors of the embedded ASR and TTS, and VAD frame accuracy with and without
noise reduction (bench/vad_accuracy.py). Speech is flite's, sent at real-time pace in 40 ms chunks.
Only loopback addresses are used; every process started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openai import AsyncOpenAI
from tests.support.scripted_llm import ScriptedLLM
from tests.support.server import PalaverServer, running_server
from tests.support.speech import flite_speech, silence, to_rate
from tests.support.speech_script import RATE, build, stream, wall_at

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
    if not values_ms:
        return f"{name}: no samples"
    return (
        f"{name}: n={len(values_ms)} p50={percentile(values_ms, 0.5):.1f} ms "
        f"p95={percentile(values_ms, 0.95):.1f} ms p99={percentile(values_ms, 0.99):.1f} ms "
        f"max={max(values_ms):.1f} ms"
    )


def client(server: PalaverServer) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key="bench", base_url=server.http_url + "/v1", websocket_base_url=server.ws_base_url
    )


async def until(conn: Any, type_: str, timeout: float = 30.0) -> tuple[Any, float]:
    async with asyncio.timeout(timeout):
        while True:
            event = await conn.recv()
            if event.type == type_:
                return event, time.perf_counter()


# --------------------------------------------------------------------------- T0


async def committed_to_audio(server: PalaverServer, llm: ScriptedLLM, turns: int) -> list[float]:
    speech = [
        to_rate(silence(100, 16000) + flite_speech(u) + silence(200, 16000), 16000, RATE) for u in UTTERANCES
    ]
    out: list[float] = []
    async with client(server).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
        for turn in range(turns):
            llm.push_text(ANSWER)
            await stream(conn, speech[turn % len(speech)])
            await conn.input_audio_buffer.commit()
            await conn.response.create()
            _, committed = await until(conn, "input_audio_buffer.committed")
            _, first = await until(conn, "response.output_audio.delta")
            await until(conn, "response.done")
            out.append((first - committed) * 1000)
    return out


# --------------------------------------------------------------------------- P1 / P3


async def vad_turns(server: PalaverServer, turns: int, silence_ms: int) -> tuple[list[float], list[float]]:
    """(speech_stopped -> first audio, true end of speech -> first audio) per turn."""
    stopped_to_audio: list[float] = []
    end_to_audio: list[float] = []
    vad = {"type": "server_vad", "silence_duration_ms": silence_ms, "prefix_padding_ms": 300}
    async with client(server).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": vad}}})
        for turn in range(turns):
            script = build(
                [("pause", 300), ("say", UTTERANCES[turn % len(UTTERANCES)]), ("end", None), ("pause", 800)]
            )
            sender = asyncio.create_task(stream(conn, script.pcm))
            _, stopped = await until(conn, "input_audio_buffer.speech_stopped")
            _, first = await until(conn, "response.output_audio.delta")
            await until(conn, "response.done")
            sent = await sender
            end_ms = script.turns[0][1]
            stopped_to_audio.append((first - stopped) * 1000)
            end_to_audio.append((first - wall_at(sent, end_ms)) * 1000)
    return stopped_to_audio, end_to_audio


# --------------------------------------------------------------------------- P2


async def barge_in(server: PalaverServer, llm: ScriptedLLM, turns: int) -> list[float]:
    """Speech onset (its chunk sent) -> the last audio delta of the response it interrupts."""
    out: list[float] = []
    vad = {"type": "server_vad", "silence_duration_ms": 400, "prefix_padding_ms": 300}
    llm.chunk_delay = 0.03
    async with client(server).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": vad}}})
        for turn in range(turns):
            llm.push_text(
                " ".join(["This answer keeps going, sentence after sentence, for a long while."] * 8)
            )
            llm.push_text("Okay.")
            ask = build([("pause", 300), ("say", "tell me a story"), ("pause", 600)], seed=turn)
            await stream(conn, ask.pcm)
            created, _ = await until(conn, "response.created")
            await until(conn, "response.output_audio.delta")
            await asyncio.sleep(0.5)
            interrupt = build([("say", "stop please"), ("end", None), ("pause", 700)], seed=100 + turn)
            sender = asyncio.create_task(stream(conn, interrupt.pcm))
            last_delta = 0.0
            async with asyncio.timeout(30):
                done = 0
                while done < 2:
                    event = await conn.recv()
                    if (
                        event.type == "response.output_audio.delta"
                        and event.response_id == created.response.id
                    ):
                        last_delta = time.perf_counter()
                    elif event.type == "response.done":
                        done += 1
            sent = await sender
            onset = wall_at(sent, interrupt.turns[0][0])
            out.append(max(0.0, last_delta - onset) * 1000)
    llm.chunk_delay = 0.0
    return out


# --------------------------------------------------------------------------- backends


def asr_rtf() -> float:
    stt = PocketsphinxSTT()
    stt.warm_up()
    audio = [silence(100, 16000) + flite_speech(u) + silence(100, 16000) for u in UTTERANCES]
    seconds = sum(len(a) / 2 / 16000 for a in audio)
    start = time.perf_counter()
    for pcm in audio:
        stream_ = stt.open_stream()
        for i in range(0, len(pcm), 1280):
            stream_.push(pcm[i : i + 1280])
        stream_.finish()
    return (time.perf_counter() - start) / seconds


def tts_rtf() -> tuple[float, float]:
    tts = EspeakTTS()
    first_ms: list[float] = []
    total_time = total_audio = 0.0
    for text in [*UTTERANCES, ANSWER] * 3:
        chunks: list[bytes] = []
        start = time.perf_counter()

        def sink(pcm: bytes, chunks: list[bytes] = chunks, start: float = start) -> bool:
            if not chunks:
                first_ms.append((time.perf_counter() - start) * 1000)
            chunks.append(pcm)
            return True

        tts.synthesize(text, voice="alloy", speed=1.0, sink=sink)
        total_time += time.perf_counter() - start
        total_audio += sum(len(c) for c in chunks) / 2 / tts.sample_rate
    return total_time / total_audio, statistics.median(first_ms)


@contextmanager
def servers(llm: ScriptedLLM) -> Iterator[dict[str, PalaverServer]]:
    scripted = {
        "PALAVER_LLM_BASE_URL": llm.base_url,
        "PALAVER_LLM_MODEL": "scripted",
        "PALAVER_API_KEY": None,
    }
    no_guard = {"PALAVER_BARGE_IN_MIN_SPEECH_MS": "0", "PALAVER_BARGE_IN_THRESHOLD_BOOST": "0"}
    with (
        running_server(scripted) as embedded_scripted,
        running_server(
            {"PALAVER_STT": "null", "PALAVER_LLM_BASE_URL": None, "PALAVER_API_KEY": None}
        ) as instant,
        running_server({"PALAVER_LLM_BASE_URL": None, "PALAVER_API_KEY": None}) as embedded_echo,
        running_server({**scripted, **no_guard}) as unguarded,
    ):
        yield {
            "scripted": embedded_scripted,
            "instant": instant,
            "echo": embedded_echo,
            "unguarded": unguarded,
        }


async def run(turns: int, llm: ScriptedLLM, s: dict[str, PalaverServer], only: set[str]) -> None:
    if "T0" in only:
        t0 = await committed_to_audio(s["scripted"], llm, turns)
        print(summary("T0 committed -> first audio delta (manual turns, scripted LLM)", t0), flush=True)
    if "P1" in only:
        p1, _ = await vad_turns(s["instant"], turns, silence_ms=200)
        print(summary("P1 speech_stopped -> first audio delta (instant backends)", p1), flush=True)
    if "P2" in only:
        p2_off = await barge_in(s["unguarded"], llm, turns)
        print(summary("P2 barge-in onset -> last audio delta (echo guard off)", p2_off), flush=True)
        p2_on = await barge_in(s["scripted"], llm, turns)
        print(summary("P2 barge-in onset -> last audio delta (echo guard on, 250 ms)", p2_on), flush=True)
    if "P3" in only:
        _, p3 = await vad_turns(s["echo"], turns, silence_ms=200)
        print(
            summary("P3 end of speech -> first audio delta (embedded pipeline, silence 200 ms)", p3),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--only", nargs="+", default=["T0", "P1", "P2", "P3", "RTF", "VAD"])
    args = parser.parse_args()
    with ScriptedLLM() as llm, servers(llm) as s:
        asyncio.run(run(args.turns, llm, s, set(args.only)))
    if "RTF" in args.only:
        print(f"ASR pocketsphinx real-time factor: {asr_rtf():.3f}")
        rtf, ttfa = tts_rtf()
        print(f"TTS espeak-ng real-time factor: {rtf:.4f} (median time to first chunk {ttfa:.2f} ms)")
    if "VAD" in args.only:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import vad_accuracy

        vad_accuracy.main()


if __name__ == "__main__":
    main()
