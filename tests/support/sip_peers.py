"""Real SIP peers for end-to-end tests: SIPp, baresip, kamailio, linphonec; and their test media.

Everything runs on 127.0.0.1 only, in a private temporary directory, with bounded timeouts, and
is killed when its context ends (``with``), whatever happens in the test.  A missing binary makes
the test skip with the package to install (``scripts/test`` installs them on Debian).

Quick reference (each returns or yields a result with the process output and the files made)::

    speech = speech_wav(tmp / "hello.wav", "Hello, I would like to book a table.", trailing_silence_s=4)
    wav_to_rtp_pcap(speech, tmp / "speech.pcap")                    # G.711 RTP that SIPp can play
    result = run_sipp(SCENARIOS / "uac_speech.xml", f"127.0.0.1:{port}", transport="t1",
                      pcaps={"speech.pcap": tmp / "speech.pcap"}, dtmf="1", duration_ms=6000)
    assert result.ok, result.describe()

    with BaresipCaller(tmp / "bs", wav=speech, srtp=True, tls=True) as caller:
        outcome = caller.dial(f"sip:agent@127.0.0.1:{tls_port};transport=tls", seconds=15)
    outcome.decoded  # the WAV baresip received (what the caller heard)

    with Kamailio(tmp / "kam", uas=("127.0.0.1", port)) as proxy:   # stateful, Record-Route
        run_sipp(..., target=f"127.0.0.1:{proxy.port}")

    with Linphonec(tmp / "lp") as phone:
        outcome = phone.call(f"sip:agent@127.0.0.1:{port}", play=speech, record=tmp / "heard.wav", seconds=8)
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import time
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from tests.support.peers import missing_peer

__all__ = [
    "SCENARIOS",
    "BaresipCaller",
    "BaresipOutcome",
    "Kamailio",
    "LinphoneOutcome",
    "Linphonec",
    "SippProcess",
    "SippResult",
    "TlsFiles",
    "free_port",
    "make_tls_cert",
    "read_wav",
    "require_binary",
    "run_sipp",
    "run_sipp_async",
    "speech_wav",
    "wav_to_rtp_pcap",
    "write_wav",
]

#: The SIPp scenarios written for Palaver's tests (see each file's header comment).
SCENARIOS = Path(__file__).resolve().parent / "sipp"
#: Where Debian's sip-tester keeps the stock pcaps (g711a.pcap, dtmf_2833_<digit>.pcap).
SIPP_PCAPS = Path("/usr/share/sip-tester")
LOOPBACK = "127.0.0.1"


#: Debian package per binary (what to install when a test skips).
PACKAGES = {
    "sipp": "sip-tester",
    "baresip": "baresip-core",
    "kamailio": "kamailio",
    "linphonec": "linphone-cli",
    "openssl": "openssl",
    "flite": "flite",
}


def require_binary(name: str) -> str:
    """The path of ``name``; missing, the test fails under CI and is skipped elsewhere, saying
    which Debian package provides it."""
    path = shutil.which(name)
    if path is None:
        missing_peer(name, f"apt-get install {PACKAGES.get(name, name)} (scripts/test installs it)")
    return path


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for 127.0.0.1: ``cert`` and ``key`` apart, ``pem`` both in one."""

    cert: Path
    key: Path
    pem: Path


def make_tls_cert(directory: Path, common_name: str = "127.0.0.1") -> TlsFiles:
    """A throwaway RSA certificate with subjectAltName IP:127.0.0.1 and DNS:localhost (openssl CLI)."""
    openssl = require_binary("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, pem = directory / "tls.crt", directory / "tls.key", directory / "tls.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={common_name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    return TlsFiles(cert, key, pem)


# ------------------------------------------------------------------------------------- ports


def free_port(count: int = 1, *, udp: bool = True, tcp: bool = True) -> int:
    """A port ``p`` such that ``p .. p+count-1`` are free on 127.0.0.1 for UDP and/or TCP right now.

    For peers that need a fixed port on their command line (SIPp ``-p``/``-mp`` uses ``mp`` and
    ``mp+2``, baresip its TLS on ``sip_listen`` + 1).  Racy by nature; ranges are tried at random
    so parallel tests rarely collide.
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - count) & ~1
        if all(_is_free(base + i, udp=udp, tcp=tcp) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} free consecutive ports found on {LOOPBACK}")


def _is_free(port: int, *, udp: bool, tcp: bool) -> bool:
    kinds = ([socket.SOCK_DGRAM] if udp else []) + ([socket.SOCK_STREAM] if tcp else [])
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


# ------------------------------------------------------------------------------------- media


def write_wav(path: Path, pcm: bytes, rate: int = 8000) -> Path:
    """16-bit mono little-endian PCM → a WAV file (what baresip's aufile and linphonec read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def read_wav(path: Path) -> tuple[bytes, int]:
    """A WAV's first channel as 16-bit PCM, and its rate (for recordings: check level, length)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * w.getsampwidth()}-bit samples; expected 16-bit")
        channels, rate = w.getnchannels(), w.getframerate()
        frames = w.readframes(w.getnframes())
    if channels > 1:
        step = 2 * channels
        frames = b"".join(frames[i : i + 2] for i in range(0, len(frames), step))
    return frames, rate


def speech_wav(
    path: Path,
    text: str,
    *,
    rate: int = 8000,
    leading_silence_s: float = 0.3,
    trailing_silence_s: float = 0.0,
) -> Path:
    """Speak ``text`` with flite into a ``rate`` Hz WAV, padded with silence.

    A baresip caller hangs up when its WAV ends: pad it (``trailing_silence_s``) for as long as
    the caller should stay on the line to hear the reply.
    """
    from tests.support.speech import FliteMissing, flite_speech, to_rate

    require_binary("flite")
    try:
        pcm = to_rate(flite_speech(text), 16000, rate)
    except FliteMissing as exc:  # pragma: no cover - require_binary skipped already
        pytest.skip(str(exc))
    lead = b"\0\0" * int(rate * leading_silence_s)
    tail = b"\0\0" * int(rate * trailing_silence_s)
    return write_wav(path, lead + pcm + tail, rate)


def _linear_to_g711(pcm: bytes, encoding: str) -> bytes:
    import numpy as np

    from palaver.audio.g711 import alaw_encode, ulaw_encode

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
    encode = alaw_encode if encoding == "PCMA" else ulaw_encode
    return encode(samples).tobytes()


def _ip_checksum(header: bytes) -> int:
    total = int(sum(struct.unpack(f"!{len(header) // 2}H", header)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def wav_to_rtp_pcap(
    wav: Path,
    pcap: Path,
    *,
    encoding: Literal["PCMA", "PCMU"] = "PCMA",
    ptime_ms: int = 20,
    ssrc: int = 0x50A1A7E5,
    src: tuple[str, int] = ("127.0.0.1", 6000),
    dst: tuple[str, int] = ("127.0.0.1", 40000),
) -> float:
    """Write an 8 kHz WAV as a pcap of G.711 RTP packets, ``ptime_ms`` apart; returns its seconds.

    SIPp's ``play_pcap_audio`` replays the UDP payloads of a pcap (Ethernet/IPv4/UDP, the
    layout of Debian's own ``g711a.pcap``) with the pcap's timing, to the callee's media
    address; the addresses written here do not matter.  PCMA is payload type 8, PCMU 0 (the
    SIPp scenarios here offer ``8 101``).
    """
    pcm, rate = read_wav(wav)
    if rate != 8000:
        raise ValueError(f"{wav}: {rate} Hz; G.711 RTP needs 8000 Hz (speech_wav(rate=8000))")
    payload_type = 8 if encoding == "PCMA" else 0
    samples_per_packet = 8 * ptime_ms
    g711 = _linear_to_g711(pcm, encoding)
    packets = [g711[i : i + samples_per_packet] for i in range(0, len(g711), samples_per_packet)]
    if packets and len(packets[-1]) < samples_per_packet:
        packets[-1] += (b"\xd5" if encoding == "PCMA" else b"\xff") * (samples_per_packet - len(packets[-1]))
    src_ip, dst_ip = socket.inet_aton(src[0]), socket.inet_aton(dst[0])
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # LINKTYPE_ETHERNET
    start_us = 1_700_000_000 * 1_000_000
    for n, payload in enumerate(packets):
        rtp = struct.pack(
            "!BBHII", 0x80, payload_type | (0x80 if n == 0 else 0), n & 0xFFFF, n * samples_per_packet, ssrc
        )
        udp_len = 8 + len(rtp) + len(payload)
        udp = struct.pack("!HHHH", src[1], dst[1], udp_len, 0)  # checksum 0: none (IPv4 allows it)
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, n & 0xFFFF, 0x4000, 64, 17, 0, src_ip, dst_ip
        )
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        frame = (
            b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp + rtp + payload
        )
        sec, usec = divmod(start_us + n * ptime_ms * 1000, 1_000_000)
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    pcap.parent.mkdir(parents=True, exist_ok=True)
    pcap.write_bytes(bytes(out))
    return len(packets) * ptime_ms / 1000


# --------------------------------------------------------------------------------- processes


class _Process:
    """A peer process in its own session (so its children die with it), output to files."""

    def __init__(
        self, argv: Sequence[str], workdir: Path, *, name: str, env: Mapping[str, str] | None = None
    ):
        self.argv = [str(a) for a in argv]
        self.workdir = workdir
        self.name = name
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self._env = dict(os.environ if env is None else env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, stdin: bool = False) -> _Process:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self._env,
                start_new_session=True,
            )
        return self

    def wait(self, timeout: float) -> int:
        """The exit code; on timeout the process is killed and the code is that of the kill."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait(timeout=10)
        self._close_stdin()
        return code

    def _close_stdin(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, grace: float = 3.0) -> None:
        """SIGTERM to the process group, SIGKILL after ``grace`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            self._close_stdin()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_stdin()

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._close_stdin()

    def output(self) -> str:
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                parts.append(path.read_text("utf-8", "replace"))
        return "\n".join(parts)


# -------------------------------------------------------------------------------------- SIPp


@dataclass
class SippResult:
    """What a SIPp run left: exit code (0: every call succeeded), output and trace files."""

    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def trace(self, kind: Literal["errors", "messages", "logs", "screen"]) -> str:
        """A trace file's text (``errors`` with -trace_err, ``messages`` -trace_msg, ``logs`` -trace_logs)."""
        path = self.files.get(kind)
        return path.read_text("utf-8", "replace") if path is not None and path.exists() else ""

    def describe(self) -> str:
        """Everything useful for an assertion message."""
        tail = "\n".join(self.stdout.splitlines()[-25:])
        parts = [f"sipp exit {self.returncode} in {self.workdir}", tail, self.stderr[-2000:]]
        for kind in ("errors", "messages"):
            text = self.trace(kind)
            if text:
                parts.append(f"--- {kind} ---\n{text[-6000:]}")
        return "\n".join(parts)


def _sipp_workdir(workdir: Path, pcaps: Mapping[str, Path], dtmf: str | None) -> None:
    """A private CWD whose ``pcap/`` holds the stock pcaps, the test's own, and ``dtmf.pcap``.

    Scenarios name pcaps relative to the CWD (the stock uac_pcap plays ``pcap/g711a.pcap``).
    """
    folder = workdir / "pcap"
    folder.mkdir(parents=True, exist_ok=True)
    if SIPP_PCAPS.is_dir():
        for stock in SIPP_PCAPS.glob("*.pcap"):
            link = folder / stock.name
            if not link.exists():
                link.symlink_to(stock)
    for name, path in pcaps.items():
        target = folder / name
        if target.exists() or target.is_symlink():
            target.unlink()
        target.symlink_to(Path(path).resolve())
    if dtmf is not None:
        names = {"*": "star", "#": "pound"}
        stock = SIPP_PCAPS / f"dtmf_2833_{names.get(dtmf, dtmf)}.pcap"
        if not stock.exists():
            raise ValueError(f"no stock RFC 4733 pcap for digit {dtmf!r} ({stock})")
        target = folder / "dtmf.pcap"
        if target.exists() or target.is_symlink():
            target.unlink()
        target.symlink_to(stock)


def sipp_command(
    scenario: str | Path,
    target: str | None,
    *,
    transport: Literal["u1", "t1"] = "u1",
    local_port: int | None = None,
    media_port: int | None = None,
    calls: int = 1,
    timeout_s: float = 30.0,
    service: str | None = None,
    duration_ms: int | None = None,
    variables: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """SIPp's argv.  ``scenario``: a built-in name (``uac_pcap``, ``uas``) or an XML path."""
    argv = [require_binary("sipp")]
    if isinstance(scenario, Path) or str(scenario).endswith(".xml"):
        argv += ["-sf", str(Path(scenario).resolve())]
    else:
        argv += ["-sn", str(scenario)]
    if target is not None:
        argv.append(target)
    argv += ["-t", transport, "-i", LOOPBACK, "-mi", LOOPBACK, "-m", str(calls), "-nostdin"]
    argv += ["-p", str(local_port if local_port is not None else free_port())]
    argv += ["-mp", str(media_port if media_port is not None else free_port(4, tcp=False))]
    argv += ["-timeout", f"{max(1, round(timeout_s))}s", "-timeout_error", "-max_recv_loops", "1000"]
    argv += ["-trace_err", "-trace_msg", "-trace_logs", "-trace_screen"]
    argv += ["-error_file", "errors.log", "-message_file", "messages.log", "-log_file", "logs.log"]
    argv += ["-screen_file", "screen.log"]
    if service is not None:
        argv += ["-s", service]
    if duration_ms is not None:
        argv += ["-d", str(duration_ms)]
    for name, value in (variables or {}).items():
        argv += ["-set", name, value]
    argv += list(extra_args)
    return argv


_TRACE_FILES = {
    "errors": "errors.log",
    "messages": "messages.log",
    "logs": "logs.log",
    "screen": "screen.log",
}


class SippProcess:
    """SIPp in the background (a UAS waiting for calls, or a UAC while the test does other things).

    ``with SippProcess(...) as sipp: ...; result = sipp.wait(30)``; leaving the block kills it.
    Takes the arguments of ``sipp_command`` plus ``workdir`` (private CWD; a temp dir if None),
    ``pcaps`` ({name in pcap/: file}) and ``dtmf`` (the stock digit linked as ``pcap/dtmf.pcap``).
    """

    def __init__(
        self,
        scenario: str | Path,
        target: str | None = None,
        *,
        workdir: Path | None = None,
        pcaps: Mapping[str, Path] | None = None,
        dtmf: str | None = "1",
        local_port: int | None = None,
        media_port: int | None = None,
        timeout_s: float = 30.0,
        **options: object,
    ) -> None:
        import tempfile

        self._tmp = None if workdir is not None else tempfile.TemporaryDirectory(prefix="palaver-sipp-")
        self.workdir = workdir if workdir is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.local_port = local_port if local_port is not None else free_port()
        self.media_port = media_port if media_port is not None else free_port(4, tcp=False)
        self.timeout_s = timeout_s
        self.argv = sipp_command(
            scenario,
            target,
            local_port=self.local_port,
            media_port=self.media_port,
            timeout_s=timeout_s,
            **options,  # type: ignore[arg-type]
        )
        _sipp_workdir(self.workdir, pcaps or {}, dtmf)
        self._proc = _Process(self.argv, self.workdir, name="sipp")

    @property
    def address(self) -> str:
        """``127.0.0.1:<local port>``: where a UAS SIPp takes calls."""
        return f"{LOOPBACK}:{self.local_port}"

    def start(self) -> SippProcess:
        self._proc.start()
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to finish (at most ``timeout``, default its own -timeout plus 10 s)."""
        code = self._proc.wait(self.timeout_s + 10 if timeout is None else timeout)
        return self.result(code)

    async def wait_async(self, timeout: float | None = None) -> SippResult:
        return await asyncio.to_thread(self.wait, timeout)

    def result(self, code: int) -> SippResult:
        files = {
            kind: self.workdir / name for kind, name in _TRACE_FILES.items() if (self.workdir / name).exists()
        }
        stdout = (
            self._proc.stdout_path.read_text("utf-8", "replace") if self._proc.stdout_path.exists() else ""
        )
        stderr = (
            self._proc.stderr_path.read_text("utf-8", "replace") if self._proc.stderr_path.exists() else ""
        )
        if "screen" in files:
            stdout = stdout + files["screen"].read_text("utf-8", "replace")
        return SippResult(code, stdout, stderr, self.workdir, files)

    def stop(self) -> None:
        self._proc.terminate(grace=2.0)

    def close(self) -> None:
        self._proc.kill()

    def __enter__(self) -> SippProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cleanup(self) -> None:
        """Remove the private temp dir (only one this object made)."""
        self.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def run_sipp(
    scenario: str | Path,
    target: str | None,
    *,
    workdir: Path | None = None,
    pcaps: Mapping[str, Path] | None = None,
    dtmf: str | None = "1",
    timeout_s: float = 30.0,
    **options: object,
) -> SippResult:
    """Run SIPp to the end (bounded by ``timeout_s``, after which it is killed) and return the result.

    ``target``: ``127.0.0.1:<port>`` to call (UAC), None for a UAS.  ``transport``: ``u1`` (UDP)
    or ``t1`` (TCP; Debian's SIPp has no TLS).  ``duration_ms``: the ``-d`` pause of the
    scenarios here (how long the call lasts after the speech starts).  ``variables``: ``-set``.
    Blocks: from async code use ``run_sipp_async``.
    """
    sipp = SippProcess(
        scenario,
        target,
        workdir=workdir,
        pcaps=pcaps,
        dtmf=dtmf,
        timeout_s=timeout_s,
        **options,  # type: ignore[arg-type]
    )
    with sipp:
        return sipp.wait()


async def run_sipp_async(
    scenario: str | Path,
    target: str | None,
    **kwargs: object,
) -> SippResult:
    """``run_sipp`` off the event loop (for tests that serve webhooks or sockets in-process)."""
    return await asyncio.to_thread(run_sipp, scenario, target, **kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- baresip


@dataclass
class BaresipOutcome:
    """A finished baresip call: exit code, log, and the sndfile recordings (16-bit WAVs)."""

    returncode: int  # 0 also when stopped after the call (baresip quits cleanly on SIGTERM)
    log: str
    encoded: Path | None  # what baresip sent (its microphone: the aufile WAV)
    decoded: Path | None  # what baresip received: what the caller heard

    def established(self) -> bool:
        return "Call established" in self.log


class BaresipCaller:
    """baresip as a headless caller: a WAV as microphone, recordings of both directions.

    Config generated in ``workdir`` (``net_interface 127.0.0.1``; ``aufile`` source at 8 kHz
    mono; ``sndfile`` writes ``*-enc.wav``/``*-dec.wav`` to its own ``snd_path``; an account
    with ``regint=0``: no REGISTER).  ``srtp``: ``mediaenc=srtp-mand`` (SDES, RTP/SAVP).
    ``tls``: the account uses ``transport=tls`` (dial a ``;transport=tls`` URI); baresip 1.0
    does not verify the server certificate.  The call ends when the WAV ends (baresip hangs up
    on "end of file"), or after ``seconds``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        wav: Path,
        srtp: bool = False,
        tls: bool = False,
        codecs: str = "pcmu,pcma",
        sip_port: int | None = None,
        rtp_ports: tuple[int, int] | None = None,
    ) -> None:
        require_binary("baresip")
        _, rate = read_wav(wav)
        if rate != 8000:
            raise ValueError(f"{wav}: baresip's aufile is set to 8000 Hz here; got {rate} Hz")
        self.workdir = workdir
        self.config_dir = workdir / "config"
        self.snd_path = workdir / "recordings"
        self.sip_port = sip_port if sip_port is not None else free_port(2)
        lo = free_port(20, tcp=False) if rtp_ports is None else rtp_ports[0]
        hi = lo + 19 if rtp_ports is None else rtp_ports[1]
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.snd_path.mkdir(parents=True, exist_ok=True)
        modules = "/usr/lib/baresip/modules"
        config = f"""\
sip_listen\t\t{LOOPBACK}:{self.sip_port}
net_interface\t\t{LOOPBACK}
audio_player\t\talsa,null
audio_alert\t\talsa,null
audio_source\t\taufile,{Path(wav).resolve()}
ausrc_srate\t\t8000
auplay_srate\t\t8000
ausrc_channels\t\t1
auplay_channels\t\t1
rtp_ports\t\t{lo}-{hi}
snd_path\t\t{self.snd_path}
module_path\t\t{modules}
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\talsa.so
module\t\t\tsndfile.so
module\t\t\tsrtp.so
module_tmp\t\tuuid.so
module_tmp\t\taccount.so
module_app\t\tmenu.so
"""
        (self.config_dir / "config").write_text(config)
        params = ["regint=0", f"audio_codecs={codecs}"]
        if srtp:
            params.append("mediaenc=srtp-mand")
        uri = f"sip:caller@{LOOPBACK}:{self.sip_port}" + (";transport=tls" if tls else "")
        (self.config_dir / "accounts").write_text(f"<{uri}>;{';'.join(params)}\n")
        self._proc: _Process | None = None

    def start(self, uri: str, seconds: float) -> BaresipCaller:
        """Dial ``uri`` now; baresip quits after ``seconds`` at the latest (``-t``)."""
        argv = [require_binary("baresip"), "-f", str(self.config_dir), "-t", str(max(1, round(seconds)))]
        argv += ["-e", f"/dial {uri}"]
        env = dict(os.environ, HOME=str(self.workdir))
        self._proc = _Process(argv, self.workdir, name="baresip", env=env).start()
        return self

    def wait(self, timeout: float) -> BaresipOutcome:
        assert self._proc is not None
        code = self._proc.wait(timeout)
        return self.outcome(code)

    def dial(self, uri: str, seconds: float) -> BaresipOutcome:
        """Call ``uri``; return once the call is over (the WAV ended, the callee hung up or
        refused) or ``seconds`` passed.  baresip itself would idle until ``-t``: it is stopped."""
        self.start(uri, seconds)
        assert self._proc is not None
        deadline = time.monotonic() + seconds + 15
        while self._proc.running() and time.monotonic() < deadline:
            if self.call_over():
                time.sleep(0.5)  # the BYE's answer, the recordings' close
                self._proc.terminate()
                break
            time.sleep(0.1)
        return self.outcome(self._proc.wait(max(1.0, deadline - time.monotonic())))

    def call_over(self) -> bool:
        """True once baresip logged the end of the call: ``Call with … terminated`` after an
        established call, ``session closed: <status>`` for one refused or failed."""
        if self._proc is None or not self._proc.stdout_path.exists():
            return False
        text = self._proc.stdout_path.read_text("utf-8", "replace")
        return any(
            ("Call with" in line and "terminated" in line) or "session closed" in line
            for line in text.splitlines()
        )

    async def dial_async(self, uri: str, seconds: float) -> BaresipOutcome:
        return await asyncio.to_thread(self.dial, uri, seconds)

    def outcome(self, code: int) -> BaresipOutcome:
        log = _strip_ansi(self._proc.output()) if self._proc is not None else ""
        enc = sorted(self.snd_path.glob("*-enc.wav"))
        dec = sorted(self.snd_path.glob("*-dec.wav"))
        return BaresipOutcome(code, log, enc[-1] if enc else None, dec[-1] if dec else None)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()

    def __enter__(self) -> BaresipCaller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


# ---------------------------------------------------------------------------------- kamailio

_KAMAILIO_CFG = """\
#!KAMAILIO
# Palaver test proxy: stateful, Record-Route, everything new goes to the UAS under test.
debug=2
log_stderror=yes
fork=yes
# One receiver per socket: with several, a 180 and a 200 sent back to back can be relayed out
# of order (each child forwards the one it read), and a SIPp caller aborts on the late 180.
children=1
auto_aliases=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}
mpath="{mpath}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    xlog("L_NOTICE", "kamailio: $rm $ru from $si:$sp\\n");
    if (has_totag()) {{
        # In-dialog: follow the Route set; a request without one goes to the UAS as well
        # (SIPp's stock scenarios send ACK/BYE to the proxy, not to the Contact).
        if (!loose_route()) {{ $du = "sip:{uas_host}:{uas_port}{uas_params}"; }}
        t_relay();
        exit;
    }}
    if (is_method("CANCEL")) {{ t_relay(); exit; }}
    record_route();
    $du = "sip:{uas_host}:{uas_port}{uas_params}";
    t_relay();
}}
"""


class Kamailio:
    """kamailio as a stateful Record-Routing proxy on 127.0.0.1:``port`` (UDP and TCP) in front of
    the UAS at ``uas`` (host, port); ``uas_transport`` tcp makes it forward over TCP.

    ``with Kamailio(tmp, uas=("127.0.0.1", 5060)) as proxy: call proxy.port``; ``proxy.log()``
    has one ``kamailio: <method> <ruri> from <ip:port>`` line per request it routed.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        uas: tuple[str, int],
        port: int | None = None,
        uas_transport: Literal["udp", "tcp"] = "udp",
    ) -> None:
        self.binary = shutil.which("kamailio") or (
            "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None
        )
        if self.binary is None:
            require_binary("kamailio")
        mpaths = sorted(glob.glob("/usr/lib/*/kamailio/modules")) + sorted(
            glob.glob("/usr/lib/kamailio/modules")
        )
        if not mpaths:
            missing_peer("the kamailio modules directory", "apt-get install kamailio (scripts/test does)")
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.cfg = workdir / "kamailio.cfg"
        workdir.mkdir(parents=True, exist_ok=True)
        params = ";transport=tcp" if uas_transport == "tcp" else ""
        self.cfg.write_text(
            _KAMAILIO_CFG.format(
                host=LOOPBACK,
                port=self.port,
                mpath=mpaths[0] + "/",
                uas_host=uas[0],
                uas_port=uas[1],
                uas_params=params,
            )
        )
        self._proc: _Process | None = None

    def start(self, ready_timeout: float = 15.0) -> Kamailio:
        assert self.binary is not None
        check = subprocess.run(
            [self.binary, "-c", "-f", str(self.cfg)], capture_output=True, text=True, timeout=30, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"kamailio rejected {self.cfg}:\n{check.stdout}\n{check.stderr}")
        argv = [self.binary, "-f", str(self.cfg), "-P", str(self.workdir / "kamailio.pid"), "-DD", "-E"]
        argv += ["-Y", str(self.workdir / "run")]
        (self.workdir / "run").mkdir(exist_ok=True)
        self._proc = _Process(argv, self.workdir, name="kamailio").start()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if not self._proc.running():
                raise RuntimeError(f"kamailio exited at start:\n{self._proc.output()[-3000:]}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex((LOOPBACK, self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.close()
        raise RuntimeError(f"kamailio did not listen on {LOOPBACK}:{self.port} within {ready_timeout} s")

    def log(self) -> str:
        return self._proc.output() if self._proc is not None else ""

    def routed(self) -> list[str]:
        """The ``kamailio: METHOD ...`` lines: one per request the proxy handled."""
        return [line.split("kamailio: ", 1)[1] for line in self.log().splitlines() if "kamailio: " in line]

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------- linphonec


@dataclass
class LinphoneOutcome:
    returncode: int
    log: str
    recording: Path | None


class Linphonec:
    """linphonec (linphone-cli) driven on stdin: ``soundcard use files``, ``play``, ``record``,
    ``call``, ``terminate``, ``quit``.  Its rc file and ``$HOME`` live in ``workdir``; UDP only,
    PCMU and PCMA.  liblinphone sends STUN to the callee's RTP port at call start.
    """

    def __init__(self, workdir: Path, *, sip_port: int | None = None, rtp_port: int | None = None) -> None:
        require_binary("linphonec")
        self.workdir = workdir
        self.home = workdir / "home"
        (self.home / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.sip_port = sip_port if sip_port is not None else free_port()
        self.rtp_port = rtp_port if rtp_port is not None else free_port(4, tcp=False)
        self.rc = workdir / "linphonerc"
        self.rc.write_text(
            f"""\
[sip]
sip_port={self.sip_port}
sip_tcp_port=0
sip_tls_port=0
default_proxy=-1
ipv6_enabled=0
[rtp]
audio_rtp_port={self.rtp_port}
[sound]
echocancellation=0
[audio_codec_0]
mime=PCMU
rate=8000
enabled=1
[audio_codec_1]
mime=PCMA
rate=8000
enabled=1
[lime]
enabled=0
[net]
firewall_policy=0
"""
        )
        self._proc: _Process | None = None

    def call(self, uri: str, *, play: Path, record: Path, seconds: float) -> LinphoneOutcome:
        """Call ``uri`` playing ``play`` (8 kHz WAV) and recording what comes back into ``record``;
        hang up after ``seconds``.  Blocks for about ``seconds`` + 5 s."""
        argv = [require_binary("linphonec"), "-c", str(self.rc), "-d", "0"]
        env = dict(os.environ, HOME=str(self.home))
        self._proc = _Process(argv, self.workdir, name="linphonec", env=env).start(stdin=True)
        proc = self._proc.proc
        assert proc is not None and proc.stdin is not None

        def say(line: str, pause: float = 0.0) -> None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write((line + "\n").encode())
                proc.stdin.flush()
            if pause:
                time.sleep(pause)

        time.sleep(1.5)  # linphonec ignores commands until its core is up
        say("soundcard use files")
        say(f"play {Path(play).resolve()}")
        say(f"record {Path(record).resolve()}")
        say(f"call {uri}", seconds)
        say("terminate", 1.5)
        say("quit")
        code = self._proc.wait(15)
        log = self._proc.output()
        return LinphoneOutcome(code, log, record if record.exists() else None)

    async def call_async(self, uri: str, **kwargs: object) -> LinphoneOutcome:
        return await asyncio.to_thread(self.call, uri, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()

    def __enter__(self) -> Linphonec:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
