"""RtpEndpoint over 127.0.0.1 against a plain UDP socket peer.

No timing assertions: tests count packets and check sequence/timestamp continuity; waits are
bounded and only guard against hangs.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from palaver.rtp.dtmf import dtmf_packets
from palaver.rtp.packet import RtpPacket
from palaver.rtp.rtcp import Bye, ReceiverReport, ReportBlock, SenderReport, parse_compound
from palaver.rtp.srtp import SrtpContext, SrtpParams, generate_key
from palaver.transports.rtp import MediaClock, RtpEndpoint

PCMU_SILENCE = b"\xff" * 160
WAIT = 10.0  # a hang guard, not a timing expectation


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
async def endpoint() -> AsyncIterator[RtpEndpoint]:
    ep = await RtpEndpoint.open("127.0.0.1", (30000, 40000))
    yield ep
    await ep.close()


def addr(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getsockname()[:2]
    return host, port


async def recv(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), WAIT)
    return data


async def recv_until(sock: socket.socket, done: Callable[[list[RtpPacket]], bool]) -> list[RtpPacket]:
    got: list[RtpPacket] = []
    for _ in range(2000):
        got.append(RtpPacket.parse(await recv(sock)))
        if done(got):
            return got
    raise AssertionError("condition not reached within 2000 packets")


async def until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not cond():  # noqa: ASYNC110 - polling counters the endpoint updates
            await asyncio.sleep(0.01)


def audio(i: int) -> bytes:
    """A recognisable 20 ms PCMU frame (never silence)."""
    return bytes([i & 0x7F]) * 160


def rtp(seq: int, payload: bytes, *, pt: int = 0, ssrc: int = 0x1234, ts: int | None = None) -> bytes:
    stamp = seq * 160 if ts is None else ts
    return bytes(RtpPacket(pt, seq & 0xFFFF, stamp & 0xFFFFFFFF, ssrc, payload, marker=seq == 0))


def check_continuity(packets: list[RtpPacket]) -> None:
    for a, b in itertools.pairwise(packets):
        assert b.sequence_number == (a.sequence_number + 1) & 0xFFFF
        if a.payload_type == b.payload_type == 0:
            assert (b.timestamp - a.timestamp) & 0xFFFFFFFF == 160
    assert len({p.ssrc for p in packets}) == 1


async def test_open_binds_even_rtp_and_next_rtcp(endpoint: RtpEndpoint) -> None:
    assert endpoint.local_port % 2 == 0
    assert 30000 <= endpoint.local_port < 40000
    assert endpoint.rtcp_socket.getsockname()[1] == endpoint.local_port + 1


async def test_open_skips_busy_pairs() -> None:
    blockers = []
    try:
        # Occupy every RTCP port of a small range but the last pair's.
        for port in (31001, 31003):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", port))
            blockers.append(s)
        ep = await RtpEndpoint.open("127.0.0.1", (31000, 31005))
        assert ep.local_port == 31004
        await ep.close()
        with pytest.raises(OSError, match="no free RTP/RTCP port pair"):
            await RtpEndpoint.open("127.0.0.1", (31000, 31003))
    finally:
        for s in blockers:
            s.close()


async def test_audio_both_ways_with_callbacks(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    frames: list[bytes] = []
    events: list[str] = []
    endpoint.on_started = lambda tag: events.append(f"started {tag}")
    endpoint.on_stopped = lambda tag: events.append(f"stopped {tag}")
    endpoint.start(addr(peer), 0, "PCMU", 101, on_audio=frames.append)
    target = ("127.0.0.1", endpoint.local_port)
    for i in range(10):
        peer.sendto(rtp(i, audio(i + 1)), target)
    await until(lambda: sum(f != PCMU_SILENCE for f in frames) >= 10)
    heard = [f for f in frames if f != PCMU_SILENCE]
    assert heard == [audio(i + 1) for i in range(10)]

    endpoint.play(b"".join(audio(50 + i) for i in range(5)), "a")
    endpoint.play(audio(60) + audio(61), "b")
    got = await recv_until(peer, lambda ps: sum(p.payload == audio(61) for p in ps) == 1)
    got += await recv_until(peer, lambda ps: ps[-1].payload == PCMU_SILENCE)
    check_continuity(got)
    payloads = [p.payload for p in got if p.payload != PCMU_SILENCE]
    assert payloads == [audio(50 + i) for i in range(5)] + [audio(60), audio(61)]
    first = next(p for p in got if p.payload == audio(50))
    assert first.marker
    assert not any(p.marker for p in got if p.payload in (audio(51), audio(60)))
    await until(lambda: len(events) == 4)
    assert events == ["started a", "stopped a", "started b", "stopped b"]
    assert endpoint.played_ms("a") == 100
    stats = endpoint.stats()
    assert stats.received == 10
    assert stats.lost == 0
    assert stats.sent >= 7
    assert len(stats.send_jitter_ms) == stats.sent


async def test_continuous_silence_when_idle(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    endpoint.start(addr(peer), 8, "PCMA", None)
    got = [RtpPacket.parse(await recv(peer)) for _ in range(5)]
    check_continuity(got)
    assert all(p.payload == b"\xd5" * 160 and p.payload_type == 8 for p in got)


async def test_dtmf_in_one_digit_per_press(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    digits: list[str] = []
    endpoint.start(addr(peer), 8, "PCMA", 101, on_dtmf=digits.append)
    target = ("127.0.0.1", endpoint.local_port)
    for p in dtmf_packets("5", 16000, sequence_number=100, ssrc=7):
        peer.sendto(bytes(p), target)
    # SIPp's pcap repeats the end packet: send the last one again.
    peer.sendto(bytes(dtmf_packets("5", 16000, sequence_number=100, ssrc=7)[-1]), target)
    for p in dtmf_packets("5", 17600, sequence_number=110, ssrc=7):
        peer.sendto(bytes(p), target)
    await until(lambda: len(digits) >= 2 and endpoint.stats().received >= 9)
    assert digits == ["5", "5"]


async def test_stun_dropped_and_not_latched(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    endpoint.start(addr(peer), 0, "PCMU", None)
    stun = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        other.bind(("127.0.0.1", 0))
        other.sendto(stun, ("127.0.0.1", endpoint.local_port))
        other.sendto(b"\x17\xfe\xfd junk", ("127.0.0.1", endpoint.local_port))
        await until(lambda: endpoint.stats().non_rtp_dropped == 2)
    finally:
        other.close()
    assert endpoint.stats().latched is None
    assert endpoint.stats().received == 0


async def test_latches_onto_the_first_rtp_source(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    sdp_target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sdp_target.bind(("127.0.0.1", 0))
        sdp_target.setblocking(False)
        intruder.bind(("127.0.0.1", 0))
        endpoint.start(addr(sdp_target), 0, "PCMU", None)
        # Before any RTP arrives we send where the SDP said.
        RtpPacket.parse(await recv(sdp_target))
        peer.sendto(rtp(0, audio(1)), ("127.0.0.1", endpoint.local_port))
        await until(lambda: endpoint.stats().latched == addr(peer))
        # From now on our stream goes to the latched source ...
        got = await recv_until(peer, lambda ps: len(ps) == 3)
        check_continuity(got)
        # ... and other sources are ignored.
        intruder.sendto(rtp(1, audio(2), ssrc=99), ("127.0.0.1", endpoint.local_port))
        await until(lambda: endpoint.stats().stream.foreign_dropped == 1)
        assert endpoint.stats().received == 1
    finally:
        sdp_target.close()
        intruder.close()


async def test_clear_stops_audio_without_stopped(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    events: list[str] = []
    endpoint.on_started = lambda tag: events.append(f"started {tag}")
    endpoint.on_stopped = lambda tag: events.append(f"stopped {tag}")
    endpoint.start(addr(peer), 0, "PCMU", None)
    endpoint.play(b"".join(audio(1 + i % 100) for i in range(250)), "long")  # 5 s
    await recv_until(peer, lambda ps: ps[-1].payload != PCMU_SILENCE)
    endpoint.clear()
    assert endpoint.queued_ms == 0
    after = await recv_until(peer, lambda ps: len(ps) >= 3 and ps[-1].payload == PCMU_SILENCE)
    # At most the packet already in flight carries audio, then only silence.
    assert all(p.payload == PCMU_SILENCE for p in after[2:])
    tail = await recv_until(peer, lambda ps: len(ps) == 10)
    assert all(p.payload == PCMU_SILENCE for p in tail)
    check_continuity(after + tail)
    assert events == ["started long"]
    assert endpoint.played_ms("long") < 5000


async def test_send_dtmf(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    endpoint.start(addr(peer), 0, "PCMU", 101)
    endpoint.send_dtmf("9", 100)
    got = await recv_until(peer, lambda ps: sum(p.payload_type == 101 for p in ps) == 7)
    events = [p for p in got if p.payload_type == 101]
    assert events[0].marker
    assert len({p.timestamp for p in events}) == 1
    assert [p.payload[0] for p in events] == [9] * 7
    assert [bool(p.payload[1] & 0x80) for p in events] == [False] * 4 + [True] * 3
    check_continuity(got)


async def test_srtp_round_trip(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    params = SrtpParams("AES_CM_128_HMAC_SHA1_80", inbound_key=generate_key(), outbound_key=generate_key())
    remote = SrtpContext(params.reversed())
    frames: list[bytes] = []
    endpoint.start(addr(peer), 0, "PCMU", None, srtp=params, on_audio=frames.append)
    target = ("127.0.0.1", endpoint.local_port)
    for i in range(5):
        protected = remote.protect(rtp(i, audio(i + 1)))
        assert protected is not None
        peer.sendto(protected, target)
    peer.sendto(rtp(5, audio(9)), target)  # plain RTP on an SRTP stream: dropped
    await until(lambda: sum(f != PCMU_SILENCE for f in frames) >= 5)
    assert [f for f in frames if f != PCMU_SILENCE] == [audio(i + 1) for i in range(5)]
    endpoint.play(audio(70), "x")
    for _ in range(200):
        clear = remote.unprotect(await recv(peer))
        assert clear is not None
        if RtpPacket.parse(clear).payload == audio(70):
            break
    else:
        raise AssertionError("our audio never arrived")
    stats = endpoint.stats()
    assert stats.stream.srtp_dropped == 1
    assert stats.srtp_auth_failures == 1


async def test_inactivity_fires_once_and_not_on_hold(peer: socket.socket) -> None:
    held = await RtpEndpoint.open("127.0.0.1", (30000, 40000))
    live = await RtpEndpoint.open("127.0.0.1", (30000, 40000))
    try:
        fired: list[str] = []
        held.start(
            addr(peer),
            0,
            "PCMU",
            None,
            on_inactive=lambda: fired.append("held"),
            inactivity_seconds=0.05,
            direction="recvonly",
        )
        live.start(
            addr(peer), 0, "PCMU", None, on_inactive=lambda: fired.append("live"), inactivity_seconds=0.05
        )
        await until(lambda: "live" in fired)
        # Let the held one run for as many ticks again.
        ticks = live.clock.ticks
        await until(lambda: live.clock.ticks >= ticks + 20)
        assert fired == ["live"]
    finally:
        await held.close()
        await live.close()


async def test_shared_clock_spreads_phases() -> None:
    eps = [await RtpEndpoint.open("127.0.0.1", (30000, 40000)) for _ in range(8)]
    try:
        for ep in eps:
            ep.start(("127.0.0.1", 9), 0, "PCMU", None)
        clock = MediaClock.for_loop()
        assert all(ep.clock is clock for ep in eps)
        assert len(clock) == 8
        assert sorted(len(m) for m in clock._members) == [2, 2, 2, 2]
    finally:
        for ep in eps:
            await ep.close()
    assert len(MediaClock.for_loop()) == 0


async def test_rtcp_reports_both_ways_and_bye_on_close(peer: socket.socket) -> None:
    peer_rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ep = await RtpEndpoint.open("127.0.0.1", (30000, 40000))
    try:
        peer_rtcp.bind(("127.0.0.1", 0))
        peer_rtcp.setblocking(False)
        ep.start(addr(peer), 0, "PCMU", None, remote_rtcp=addr(peer_rtcp), rtcp_interval=0.1)
        for i in range(3):
            peer.sendto(rtp(i, audio(i)), ("127.0.0.1", ep.local_port))
        for _ in range(100):
            packets = parse_compound(await recv(peer_rtcp))
            sr = packets[0]
            assert isinstance(sr, SenderReport)
            if sr.reports:
                break
        assert sr.ssrc == RtpPacket.parse(await recv(peer)).ssrc
        assert sr.reports[0].ssrc == 0x1234 and sr.reports[0].cumulative_lost == 0
        rr = ReceiverReport(0x1234, (ReportBlock(sr.ssrc, 64, 7, 100, 80),))
        peer_rtcp.sendto(bytes(rr), ("127.0.0.1", ep.local_rtcp_port))
        await until(lambda: ep.stats().remote.reports == 1)
        remote = ep.stats().remote
        assert (remote.fraction_lost, remote.cumulative_lost, remote.jitter_ms) == (0.25, 7, 10.0)
        await ep.close()
        for _ in range(100):
            if any(isinstance(p, Bye) for p in parse_compound(await recv(peer_rtcp))):
                break
        else:
            raise AssertionError("no RTCP BYE")
    finally:
        await ep.close()
        peer_rtcp.close()
