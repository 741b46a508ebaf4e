"""Cost of concurrent sessions: N stock-SDK clients stream 24 kHz PCM in 40 ms chunks at
real-time pace into one Palaver with server VAD on.

    .venv/bin/python bench/sessions.py [--sessions 1 10 50 100] [--seconds 20]

For each N it prints the server's CPU-seconds per session-second (percent of one core per
session) and its resident memory per session, for two kinds of input:

  listening  a caller who says nothing (room noise at -55 dBFS): transport, decoding, resampling,
             VAD; what every idle line costs
  talking    speech about a third of the time (flite utterances between pauses), so turn
             detection fires and the embedded recogniser runs on each utterance
             (create_response off: the cost of answering is the brain's, not the session's)

The server is measured from /proc (utime+stime, VmRSS); the clients run in this process.
Only loopback addresses are used; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openai import AsyncOpenAI
from tests.support.server import PalaverServer, running_server
from tests.support.speech_script import CHUNK_MS, RATE, build

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def chunks_of(pcm: bytes) -> list[str]:
    step = RATE * 2 * CHUNK_MS // 1000
    return [base64.b64encode(pcm[i : i + step]).decode() for i in range(0, len(pcm) - step + 1, step)]


def listening_audio(seconds: float) -> list[str]:
    noise = np.random.default_rng(1).normal(0, 32768 * 10 ** (-55 / 20), int(RATE * seconds))
    return chunks_of(noise.astype("<i2").tobytes())


def talking_audio() -> list[str]:
    parts: list[tuple[str, Any]] = []
    for text in ["what is the weather in paris tomorrow", "turn off the lights in the living room"]:
        parts += [("pause", 2500), ("say", text), ("pause", 1500)]
    return chunks_of(build(parts, snr_db=40).pcm)


async def one_session(server: PalaverServer, chunks: list[str], seconds: float, offset: float) -> int:
    client = AsyncOpenAI(
        api_key="bench", base_url=server.http_url + "/v1", websocket_base_url=server.ws_base_url
    )
    events = 0
    vad = {"type": "server_vad", "create_response": False}
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": vad}}})

        async def drain() -> None:
            nonlocal events
            async for _ in conn:
                events += 1

        reader = asyncio.create_task(drain())
        await asyncio.sleep(offset)  # spread the sessions' chunk times over one chunk period
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            await conn.input_audio_buffer.append(audio=chunks[n % len(chunks)])
            n += 1
            await asyncio.sleep(max(0.0, start + n * CHUNK_MS / 1000 - time.perf_counter()))
        reader.cancel()
    return events


async def measure(
    server: PalaverServer, n: int, chunks: list[str], seconds: float
) -> tuple[float, float, int]:
    pid = server.pid
    assert pid is not None
    rss0 = rss_mb(pid)
    tasks = [
        asyncio.create_task(one_session(server, chunks, seconds + 2, offset=i * CHUNK_MS / 1000 / max(n, 1)))
        for i in range(n)
    ]
    await asyncio.sleep(2.5)  # connected and streaming
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    await asyncio.sleep(seconds - 1)
    cpu1 = cpu_seconds(pid)
    t1 = time.perf_counter()
    rss1 = rss_mb(pid)
    events = sum(await asyncio.gather(*tasks))
    share = (cpu1 - cpu0) / ((t1 - t0) * n)
    return share, (rss1 - rss0) / n, events


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--kinds", nargs="+", default=["listening", "talking"], choices=["listening", "talking"]
    )
    args = parser.parse_args()
    makers = {"listening": lambda: listening_audio(10.0), "talking": talking_audio}
    for kind in args.kinds:
        chunks = makers[kind]()
        for n in args.sessions:
            # A fresh server for each run, so memory kept from an earlier run cannot hide this one's.
            with running_server({"PALAVER_LLM_BASE_URL": None, "PALAVER_API_KEY": None}) as server:
                assert server.pid is not None
                idle = rss_mb(server.pid)
                share, rss, events = asyncio.run(measure(server, n, chunks, args.seconds))
            print(
                f"{kind:9s} N={n:3d}: {share * 100:6.3f} % of a core per session, "
                f"{rss:6.2f} MB RSS per session (server idle {idle:.0f} MB; {events} events received)",
                flush=True,
            )


if __name__ == "__main__":
    main()
