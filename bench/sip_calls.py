"""Concurrent phone calls: N SIPp calls with RTP both ways into one Palaver with an instant engine.

    .venv/bin/python bench/sip_calls.py [--calls 25 50 100 200 300] [--window 10] [--rate 100]
                                        [--caller talking|listening] [--quick] [--no-floor]
                                        [--keep] [--py-spy .venv/bin/py-spy]

For each N a fresh ``palaver serve`` takes N concurrent calls from one SIPp process (``-l N
-m N -r rate``, UDP). Every caller streams G.711 A-law at 20 ms from SIPp's ``rtp_stream``, a
7 s loop started at one of 8 points so that the calls' turns do not fall in step: room noise
at -55 dBFS and, when ``talking`` (the default), a flite sentence (~3 s) at its start. Palaver
answers every call itself (no webhook: the built-in agent) and sends RTP continuously:
silence frames when idle, the reply when the engine speaks. Once all N calls are up and a
settling pause has passed, a steady window is measured, then every call ends with BYE.

"Instant engine": models that cost next to nothing next to the call itself, so the figures are
the server's: ``PALAVER_STT=null`` (hears nothing, at once: every turn's transcript is empty),
the echo brain (no ``PALAVER_LLM_BASE_URL``; it answers an empty turn "I did not catch that.
Could you say it again?"), espeak-ng TTS (the only TTS; ~15 ms of CPU per 3 s reply) and
``PALAVER_VAD=energy`` (silero would dominate the per-call cost). A talking caller is answered
every 7 s (~3 s of speech back); turn detection, the session, TTS and the paced sender run as
in a real call. ``--caller listening``: room noise only, no turns: what holding a line costs.

Measured over the window:

  cpu      the server process's CPU (utime+stime of /proc/<pid>/stat, all its threads) in %
           of one core, and per call
  jitter   Palaver's RTP departures as the kernel saw them on ``lo`` (a filtered AF_PACKET
           capture with kernel timestamps, ``bench/rtp_wire.py``): each packet's distance from
           its stream's 20 ms grid (slot from the RTP timestamp, phase = the stream's median);
           p50/p99/max over every packet of every call
  missing  20 ms slots with no packet on the wire (sequence gaps and skipped slots)
  rx drop  datagrams the kernel dropped on the server's own sockets (receive buffer full:
           packets SIPp sent that the server never read), from /proc/net/udp
  up/fail  calls streaming at the end of the window / calls SIPp counted as failed
  sipp%    SIPp's CPU (the load generator)
  other%   CPU used meanwhile by every other process of the machine: on a shared machine,
           a level measured while others were busy says little about jitter

The floor: the same SIPp caller, same N calls and packets, but answered by a SIPp UAS whose
SDP points every call's media at ``bench/udp_echo.py``, a bare asyncio (uvloop) UDP echo on
one socket; its CPU, receive drops and echoes are measured the same way. An echo sends when a
packet arrives, so its departures carry SIPp's own send jitter ("sipp jit": SIPp paces on a
millisecond clock and sends a packet a slot early now and then); the floor's jitter columns
are the jitter the echo added (each echo's delay from the original's departure, minus its
stream's median delay), and its "missing" the packets never echoed.

A level passes when all N calls were up, none failed, jitter p99 < 5 ms, nothing missing and
no receive drops (and the capture itself lost nothing). Then:

  calls per core = N / (server CPU in cores over the window)
  "most calls per core" = the largest calls-per-core of the passing levels; the largest
  passing N is printed too: Python runs the event loop on one core, so that is the capacity
  of one server process, while calls per core is its density.

The machine is shared and noisy: compare the server with the floor of the same run. Only
127.0.0.1 is used; every process started here is stopped at the end of its level. Needs
root (the capture), sipp (Debian sip-tester) and flite.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.server import free_port as free_tcp_port
from tests.support.server import free_sip_port
from tests.support.sip_peers import free_port
from tests.support.speech import flite_speech, to_rate

from palaver.audio.g711 import alaw_encode
from rtp_wire import RtpCapture, analyse, echo_delays, percentile

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SENTENCE = "Hello, I would like to book a table for two people tonight, please."
LOOP_SECONDS = 7.0
VARIANTS = 8
PCMA = 8
RTP_PORTS = (30000, 39999)
JITTER_LIMIT_MS = 5.0

# ----------------------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) so far; nan once it has exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy so far (all cores; /proc/stat), in seconds."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _, _, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def socket_drops(pid: int) -> int:
    """Datagrams dropped so far on the UDP sockets ``pid`` holds (the last column of /proc/net/udp)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[9] in inodes:
                    drops += int(cols[-1])
    return drops


class Child:
    """A process in its own session (its children die with it), output to a file."""

    def __init__(
        self, argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None, cwd: Path
    ) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(a) for a in argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the group, SIGKILL after ``grace`` seconds."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            if self.wait(grace) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything it left behind

    def text(self) -> str:
        return self.log.read_text("utf-8", "replace") if self.log.exists() else ""


@contextlib.contextmanager
def running(child: Child) -> Iterator[Child]:
    try:
        yield child
    finally:
        child.stop()


def start_palaver(workdir: Path, sip_port: int) -> Child:
    """``palaver serve`` with the instant engine, SIP on ``sip_port``, RTP on RTP_PORTS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALAVER_")}
    env.update(
        PALAVER_STT="null",
        PALAVER_VAD="energy",
        PALAVER_SIP_PORT=str(sip_port),
        PALAVER_RTP_PORT_MIN=str(RTP_PORTS[0]),
        PALAVER_RTP_PORT_MAX=str(RTP_PORTS[1]),
        PYTHONUNBUFFERED="1",
    )
    http = free_tcp_port()
    argv = [sys.executable, "-m", "palaver", "serve", "--host", "127.0.0.1", "--port", str(http)]
    child = Child(argv, workdir / "palaver.log", env=env, cwd=workdir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not child.running():
            raise RuntimeError(f"palaver exited at start:\n{child.text()[-3000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=1),
        ):
            return child
        time.sleep(0.1)
    child.stop()
    raise RuntimeError(f"palaver not healthy within 60 s:\n{child.text()[-3000:]}")


def start_echo(workdir: Path) -> tuple[Child, int]:
    child = Child([sys.executable, str(ROOT / "bench" / "udp_echo.py")], workdir / "echo.log", cwd=workdir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"ready (\d+)", child.text())
        if match:
            return child, int(match.group(1))
        if not child.running():
            break
        time.sleep(0.05)
    child.stop()
    raise RuntimeError(f"udp_echo did not start:\n{child.text()}")


# ----------------------------------------------------------------------------- SIPp

_HEADERS = """\
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>{to_tag}
      Call-ID: [call_id]
      CSeq: {cseq}
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70"""


def uac_scenario(variants: int) -> str:
    """INVITE (PCMA), 200, ACK; loop one of ``variants`` caller files as RTP; pause -d; BYE."""
    invite = _HEADERS.format(to_tag="", cseq="1 INVITE")
    ack = _HEADERS.format(to_tag="[peer_tag_param]", cseq="1 ACK")
    bye = _HEADERS.format(to_tag="[peer_tag_param]", cseq="2 BYE")
    pick = "\n".join(f'  <nop next="v{i}" chance="{1 / (variants - i):.6f}"/>' for i in range(variants - 1))
    plays = "\n".join(
        f'  <label id="v{i}"/>\n'
        f'  <nop><action><exec rtp_stream="caller{i}.pcma,-1,{PCMA}"/></action></nop>\n'
        '  <nop next="talk"/>'
        for i in range(variants)
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="palaver bench caller">
  <send retrans="500"><![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{invite}
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
      a=ptime:20
      a=sendrecv

  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[

      ACK [next_url] SIP/2.0
{ack}
      Content-Length: 0

  ]]></send>
{pick}
{plays}
  <label id="talk"/>
  <pause/>
  <send retrans="500"><![CDATA[

      BYE [next_url] SIP/2.0
{bye}
      Content-Length: 0

  ]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


UAS_ECHO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="palaver bench floor: answer, media to the UDP echo">
  <Global variables="echo_port"/>
  <recv request="INVITE"/>
  <send retrans="500"><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:uas@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 2353687637 IN IP4 127.0.0.1
      s=-
      c=IN IP4 127.0.0.1
      t=0 0
      m=audio [$echo_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
      a=sendrecv

  ]]></send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
</scenario>
"""


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise SystemExit("sipp not found (Debian package sip-tester)")
    return path


def caller_audio(workdir: Path, variants: int, caller: str) -> None:
    """``caller<i>.pcma``: raw A-law of LOOP_SECONDS, rotated by i/variants: room noise at
    -55 dBFS, with a flite sentence at the start when the caller is ``talking``."""
    frames = int(LOOP_SECONDS * 50)
    noise = np.random.default_rng(7).normal(0.0, 32768 * 10 ** (-55 / 20), frames * 160)
    pcm = noise.astype(np.int16)
    if caller == "talking":
        speech = np.frombuffer(to_rate(flite_speech(SENTENCE), 16000, 8000), dtype="<i2")[: len(pcm) // 2]
        pcm[: len(speech)] = speech
    law = alaw_encode(pcm).tobytes()
    for i in range(variants):
        cut = (i * frames // variants) * 160
        (workdir / f"caller{i}.pcma").write_bytes(law[cut:] + law[:cut])


def sipp_common(port: int, media_port: int, timeout: float) -> list[str]:
    return [
        "-t", "u1", "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(port), "-mp", str(media_port),
        "-nostdin", "-timeout", f"{round(timeout)}s", "-timeout_error", "-max_recv_loops", "1000",
        "-trace_err", "-error_file", "errors.log", "-trace_screen", "-screen_file", "screen.log",
    ]  # fmt: skip


def sipp_outcome(workdir: Path) -> tuple[int | None, int | None]:
    """(successful, failed) calls from SIPp's final statistics screen, None when it has none."""
    path = workdir / "screen.log"
    text = path.read_text("utf-8", "replace") if path.exists() else ""
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return (int(ok[-1]) if ok else None, int(failed[-1]) if failed else None)


# ----------------------------------------------------------------------------- one level


@dataclass
class Level:
    target: str
    calls: int
    up: int
    failed: int | None
    window: float
    cpu_cores: float
    sipp_cores: float
    jitter_ms: list[float]
    """Palaver: its departures' distance from each stream's 20 ms grid. Floor: the jitter the echo
    added (each echo's delay minus its stream's median delay); its departures carry SIPp's too."""
    missing: int
    """Palaver: 20 ms slots with no packet on the wire. Floor: packets sent to the echo never echoed."""
    rx_drops: int
    capture_drops: int
    sipp_jitter_p99: float = float("nan")
    """SIPp's own send jitter, measured on its packets to the echo (floor runs only)."""
    others_cores: float = float("nan")
    """CPU the rest of the machine used meanwhile (not the server, SIPp or this script)."""
    note: str = ""

    @property
    def p50(self) -> float:
        return percentile(self.jitter_ms, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.jitter_ms, 0.99)

    @property
    def worst(self) -> float:
        return max(self.jitter_ms, default=float("nan"))

    @property
    def passed(self) -> bool:
        return (
            self.up >= self.calls
            and self.failed == 0
            and self.p99 < JITTER_LIMIT_MS
            and self.missing == 0
            and self.rx_drops == 0
            and self.capture_drops == 0
        )

    @property
    def calls_per_core(self) -> float:
        return self.calls / self.cpu_cores if self.cpu_cores > 0 else float("inf")


def run_level(target: str, calls: int, args: argparse.Namespace, base: Path) -> Level:
    workdir = Path(tempfile.mkdtemp(prefix=f"{target}-{calls}-", dir=base))
    caller_audio(workdir, VARIANTS, args.caller)
    (workdir / "uac.xml").write_text(uac_scenario(VARIANTS))
    ramp = calls / args.rate
    pause_s = ramp + 3 + args.settle + args.window
    media_port = free_port(4, tcp=False)
    echo_port = 0
    helpers: list[Child] = []  # other processes of ours (the floor's SIPp UAS)
    with contextlib.ExitStack() as stack:
        if target == "palaver":
            sip_port = free_sip_port()
            server = stack.enter_context(running(start_palaver(workdir, sip_port)))
        else:
            server, echo_port = start_echo(workdir)
            stack.enter_context(running(server))
            sip_port = free_port()
            uas_dir = workdir / "uas"
            uas_dir.mkdir()
            (uas_dir / "uas.xml").write_text(UAS_ECHO)
            uas_argv = [sipp_binary(), "-sf", "uas.xml", "-set", "echo_port", str(echo_port)]
            uas_argv += [
                "-m",
                str(calls),
                *sipp_common(sip_port, free_port(4, tcp=False), pause_s + ramp + 60),
            ]
            helpers.append(stack.enter_context(running(Child(uas_argv, uas_dir / "sipp.out", cwd=uas_dir))))
            time.sleep(0.3)  # the UAS binds its port
        capture = stack.enter_context(RtpCapture([media_port, *([echo_port] if echo_port else [])]))
        uac_argv = [sipp_binary(), "-sf", "uac.xml", f"127.0.0.1:{sip_port}", "-s", "agent"]
        uac_argv += ["-l", str(calls), "-m", str(calls), "-r", str(args.rate)]
        uac_argv += ["-d", str(round(pause_s * 1000)), "-rtp_threadtasks", "50"]
        uac_argv += sipp_common(free_port(), media_port, pause_s + ramp + 45)
        sipp = stack.enter_context(running(Child(uac_argv, workdir / "sipp.out", cwd=workdir)))

        # All calls up (streaming towards SIPp), then a settling pause, then the window.
        deadline = time.monotonic() + ramp + 20
        while time.monotonic() < deadline and sipp.running():
            if capture.active(time.time() - 0.5, dst=media_port) >= calls:
                break
            time.sleep(0.1)
        time.sleep(args.settle)
        first = capture.first() or time.time()
        window = min(args.window, first + pause_s - 1.0 - time.time())  # before the first BYE
        note = "" if window >= args.window else f"window cut to {window:.1f} s"
        ours = [server.pid, sipp.pid, os.getpid(), *(c.pid for c in helpers)]
        busy0, ours0 = machine_busy_seconds(), sum(cpu_seconds(pid) for pid in ours)
        cpu0, sipp0 = cpu_seconds(server.pid), cpu_seconds(sipp.pid)
        drops0, lost0 = socket_drops(server.pid), capture.dropped()
        w0, p0 = time.time(), time.perf_counter()
        if args.py_spy and target == "palaver":  # sampled from outside, without pausing the server
            spy = [args.py_spy, "record", "-p", str(server.pid), "-d", str(max(1, int(window))), "-r", "250"]
            spy += ["--nonblocking", "-f", "raw", "-o", str(base / f"py-spy-{calls}.txt")]
            stack.enter_context(running(Child(spy, workdir / "py-spy.log", cwd=workdir)))
        time.sleep(max(0.5, window))
        w1, p1 = time.time(), time.perf_counter()
        cpu1, sipp1 = cpu_seconds(server.pid), cpu_seconds(sipp.pid)
        busy1, ours1 = machine_busy_seconds(), sum(cpu_seconds(pid) for pid in ours)
        drops1, lost1 = socket_drops(server.pid), capture.dropped()
        up = capture.active(w1 - 0.5, dst=media_port)

        # The calls end with BYE; SIPp's verdict on each comes when it exits.
        sipp.wait(first + pause_s + ramp + 15 - time.time())
        _, failed = sipp_outcome(workdir)
        if sipp.running():
            note = (note + "; " if note else "") + "sipp did not finish"
        packets = capture.packets()
    wall = p1 - p0
    sipp_p99 = float("nan")
    if target == "palaver":
        wire = analyse(packets, w0, w1, dst=media_port, payload_type=PCMA)
        jitter, missing = wire.deviations_ms, wire.missing
    else:
        echo = echo_delays(packets, w0, w1 - 0.2, sent_to=echo_port, echoed_to=media_port)
        jitter, missing = echo.jitter_ms, echo.unanswered
        sipp_p99 = analyse(packets, w0, w1, dst=echo_port, payload_type=PCMA).p99
    if args.keep:  # the capture too: (time, src port, dst port, ssrc, seq, timestamp, pt) rows
        np.save(workdir / "packets.npy", np.array(packets, dtype=np.float64))
        (workdir / "window.txt").write_text(f"{w0} {w1}\n")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return Level(
        target=target,
        calls=calls,
        up=up,
        failed=failed,
        window=wall,
        cpu_cores=(cpu1 - cpu0) / wall,
        sipp_cores=(sipp1 - sipp0) / wall,
        jitter_ms=jitter,
        missing=missing,
        rx_drops=drops1 - drops0,
        capture_drops=lost1 - lost0,
        sipp_jitter_p99=sipp_p99,
        others_cores=max(0.0, (busy1 - busy0) - (ours1 - ours0)) / wall,  # tick rounding can dip below 0
        note=note,
    )


# ----------------------------------------------------------------------------- report

HEADER = (
    f"{'target':8} {'calls':>5} {'up':>4} {'fail':>4} {'cpu%':>6} {'%/call':>7} {'jit p50':>7} "
    f"{'p99':>6} {'max':>6} {'missing':>7} {'rx drop':>7} {'sipp jit':>8} {'sipp%':>6} {'other%':>6} "
    f"{'calls/core':>10}  pass"
)


def row(level: Level) -> str:
    failed = "?" if level.failed is None else str(level.failed)
    sipp_jitter = "-" if level.sipp_jitter_p99 != level.sipp_jitter_p99 else f"{level.sipp_jitter_p99:.2f}"
    text = (
        f"{level.target:8} {level.calls:5d} {level.up:4d} {failed:>4} {100 * level.cpu_cores:6.1f} "
        f"{100 * level.cpu_cores / level.calls:7.3f} {level.p50:7.2f} {level.p99:6.2f} {level.worst:6.1f} "
        f"{level.missing:7d} {level.rx_drops:7d} {sipp_jitter:>8} {100 * level.sipp_cores:6.1f} "
        f"{100 * level.others_cores:6.1f} "
        f"{level.calls_per_core:10.0f}  {'yes' if level.passed else 'no'}"
    )
    extras = [level.note] if level.note else []
    if level.capture_drops:
        extras.append(f"capture dropped {level.capture_drops} packets: loss unknown")
    return text + (f"  ({'; '.join(extras)})" if extras else "")


def best(levels: list[Level]) -> tuple[str, str]:
    passing = [lv for lv in levels if lv.passed]
    if not passing:
        return "none", "none"
    top = max(passing, key=lambda lv: lv.calls_per_core)
    return f"{top.calls_per_core:.0f} (at N={top.calls})", str(max(lv.calls for lv in passing))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, nargs="+", default=[25, 50, 100, 200, 300])
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per level")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after all calls are up")
    parser.add_argument("--rate", type=float, default=100.0, help="new calls per second")
    parser.add_argument(
        "--caller",
        choices=["talking", "listening"],
        default="talking",
        help="talking: a sentence every 7 s, each answered (default); listening: room noise only, no turns",
    )
    parser.add_argument("--quick", action="store_true", help="--calls 50 200 --window 4 (about a minute)")
    parser.add_argument("--no-floor", action="store_true", help="skip the UDP echo floor")
    parser.add_argument("--keep", action="store_true", help="keep each level's logs and SIPp files")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        help="profile the server over each window with this py-spy binary (raw stacks kept; implies --keep)",
    )
    args = parser.parse_args()
    if args.py_spy:
        args.keep = True
        args.py_spy = str(Path(shutil.which(args.py_spy) or args.py_spy).resolve())
    if args.quick:
        args.calls, args.window, args.settle = [50, 200], 4.0, 1.5
    if not RtpCapture.available():
        raise SystemExit("the RTP capture needs root or CAP_NET_RAW (AF_PACKET on lo)")
    sipp_binary()
    print("$", " ".join([Path(sys.executable).name, *sys.argv]))
    print(
        f"{os.cpu_count()} cores; window {args.window:g} s after {args.settle:g} s settling; "
        f"{args.rate:g} calls/s; caller {args.caller}"
    )
    print(HEADER, flush=True)
    base = Path(tempfile.mkdtemp(prefix="palaver-sip-bench-"))
    results: dict[str, list[Level]] = {"palaver": [], "floor": []}
    try:
        for calls in args.calls:
            for target in ("palaver", *(() if args.no_floor else ("floor",))):
                level = run_level(target, calls, args, base)
                results[target].append(level)
                print(row(level), flush=True)
    finally:
        if args.keep:
            print(f"logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    per_core, largest = best(results["palaver"])
    floor_core, floor_largest = best(results["floor"]) if results["floor"] else ("-", "-")
    print(
        f"most calls per core with jitter p99 < {JITTER_LIMIT_MS:g} ms and no loss: {per_core} "
        f"(floor: {floor_core})"
    )
    print(f"largest passing level: {largest} calls (floor: {floor_largest})")


if __name__ == "__main__":
    main()
