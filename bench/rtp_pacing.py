"""Cost and precision of RTP pacing: N RtpEndpoints in this process, each sending 20 ms G.711
packets to a peer process that sends 20 ms packets back to every endpoint (a call with both
sides talking).

    .venv/bin/python bench/rtp_pacing.py [--calls 50 300] [--seconds 10] [--timers shared per-call]
                                         [--phases 4] [--srtp]

For each N and timer layout it prints this process's CPU per call (percent of one core; send,
receive, jitter buffer, callbacks) and µs of CPU per packet handled (sent + received), the
send-time deviation from the absolute 20 ms schedule (p50/p99/max ms, every packet of every
call), and loss in both directions. ``shared``: one MediaClock for all calls (the default
design); ``per-call``: one MediaClock, hence one timer chain, per call. The peer runs in a
subprocess so its CPU is not counted. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time

from palaver.rtp.srtp import SrtpParams, generate_key
from palaver.transports.rtp import MediaClock, RtpEndpoint

PEER = r"""
import asyncio, json, socket, struct, sys, time
targets = json.loads(sys.argv[1]); seconds = float(sys.argv[2])
srtp = json.loads(sys.argv[3]); talk = sys.argv[4] == "1"
ctx = None
if srtp:
    from palaver.rtp.srtp import SrtpContext, SrtpParams
    p = SrtpParams(srtp[0], bytes.fromhex(srtp[1]), bytes.fromhex(srtp[2]))
    ctx = [SrtpContext(p) for _ in targets]
socks = []
for _ in targets:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); s.setblocking(False)
    socks.append(s)
print(json.dumps([s.getsockname()[1] for s in socks]), flush=True)
received = [0] * len(socks)
async def main():
    loop = asyncio.get_running_loop()
    def drain(i, s):
        while True:
            try: data = s.recv(2048)
            except BlockingIOError: return
            if not 200 <= data[1] <= 204: received[i] += 1  # RTP only (RTCP may land here too)
    for i, s in enumerate(socks): loop.add_reader(s, drain, i, s)
    payload = b"\x55" * 160
    t0 = loop.time(); n = 0; sent = 0
    while n * 0.02 < seconds:
        for i, (s, port) in enumerate(zip(socks, targets)):
            pkt = struct.pack("!BBHII", 0x80, 8, n & 0xFFFF, n * 160 & 0xFFFFFFFF, 1000 + i) + payload
            if ctx: pkt = ctx[i].protect(pkt)
            if talk: s.sendto(pkt, ("127.0.0.1", port)); sent += 1
        n += 1
        await asyncio.sleep(max(0.0, t0 + n * 0.02 - loop.time()))
    await loop.run_in_executor(None, sys.stdin.readline)  # the endpoints have closed
    print(json.dumps({"sent": sent, "received": sum(received)}), flush=True)
asyncio.run(main())
"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(
    calls: int, seconds: float, timers: str, phases: int, srtp: bool, talk: bool
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    shared = MediaClock(loop, phases=phases)
    eps = [
        await RtpEndpoint.open(
            "127.0.0.1", (20000, 40000), clock=shared if timers == "shared" else MediaClock(loop, phases=1)
        )
        for _ in range(calls)
    ]
    params = SrtpParams("AES_CM_128_HMAC_SHA1_80", generate_key(), generate_key()) if srtp else None
    peer_srtp = (
        json.dumps([params.suite, params.outbound_key.hex(), params.inbound_key.hex()]) if params else "null"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PEER,
        json.dumps([ep.local_port for ep in eps]),
        str(seconds),
        peer_srtp,
        "1" if talk else "0",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    ports = json.loads(await proc.stdout.readline())
    frames = [0]

    def on_audio(frame: bytes) -> None:
        frames[0] += 1

    audio = b"\x2a" * 160 * 50 * int(seconds + 2)
    for ep, port in zip(eps, ports, strict=True):
        ep.start(("127.0.0.1", port), 8, "PCMA", None, srtp=params, on_audio=on_audio)
        ep.play(audio, "speech")
    await asyncio.sleep(1.0)  # warm-up: latching, jitter buffers
    for ep in eps:
        ep._deviation.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    sent0 = sum(ep.stats().sent for ep in eps)
    recv0 = sum(ep.stats().received for ep in eps)
    await asyncio.sleep(seconds - 2.0)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    sent = sum(ep.stats().sent for ep in eps) - sent0
    received = sum(ep.stats().received for ep in eps) - recv0
    deviations = [d for ep in eps for d in ep.stats().send_jitter_ms]
    late = sum(ep.stats().stream.late_slots for ep in eps)
    skipped = sum(ep.stats().stream.skipped_slots for ep in eps)
    lost_in = sum(max(0, ep.stats().lost) for ep in eps)
    for ep in eps:
        await ep.close()
    sent_total = sum(ep.stats().sent for ep in eps)
    await asyncio.sleep(0.3)
    assert proc.stdin is not None
    proc.stdin.write(b"done\n")
    await proc.stdin.drain()
    peer = json.loads(await proc.stdout.readline())
    await proc.wait()
    return {
        "calls": calls,
        "cpu_pct_per_call": 100 * cpu / wall / calls,
        "cpu_pct_total": 100 * cpu / wall,
        "us_per_packet": 1e6 * cpu / max(1, sent + received),
        "dev_p50_ms": statistics.median(deviations) if deviations else float("nan"),
        "dev_p99_ms": pct(deviations, 0.99),
        "dev_max_ms": max(deviations, default=float("nan")),
        "late_slots": late,
        "skipped_slots": skipped,
        "lost_in": lost_in,
        "peer_loss_pct": 100 * (1 - peer["received"] / max(1, sent_total)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, nargs="+", default=[50, 300])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--timers", nargs="+", default=["shared", "per-call"], choices=["shared", "per-call"])
    ap.add_argument("--phases", type=int, default=4)
    ap.add_argument("--srtp", action="store_true")
    ap.add_argument("--one-way", action="store_true", help="the peer only listens (send-side cost alone)")
    args = ap.parse_args()
    print(
        f"{'timers':9} {'calls':>5} {'cpu%/call':>9} {'cpu%':>6} {'us/pkt':>7} "
        f"{'dev p50':>8} {'p99':>6} {'max':>6} {'late':>6} {'skip':>5} {'lost in':>7} {'peer loss%':>10}"
    )
    for timers in args.timers:
        for calls in args.calls:
            r = asyncio.run(run(calls, args.seconds, timers, args.phases, args.srtp, not args.one_way))
            print(
                f"{timers:9} {calls:5d} {r['cpu_pct_per_call']:9.3f} {r['cpu_pct_total']:6.1f} "
                f"{r['us_per_packet']:7.1f} {r['dev_p50_ms']:8.2f} {r['dev_p99_ms']:6.2f} "
                f"{r['dev_max_ms']:6.2f} {r['late_slots']:6d} {r['skipped_slots']:5d} {r['lost_in']:7d} "
                f"{r['peer_loss_pct']:10.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
