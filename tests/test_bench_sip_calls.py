"""The pieces of ``bench/sip_calls.py`` that can be checked quickly and without timing: the floor's
UDP echo accounts for every packet, the wire analysis finds late packets, missing slots and
unanswered echoes in made-up captures, and the capture filter keeps only what was sent to its
ports (when this user may open a packet socket)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest
from bench.rtp_wire import PacketSeen, RtpCapture, analyse, echo_delays
from bench.udp_echo import open_echo

from tests.support.peers import require_packet_capture


def rtp(seq: int, stamp: int, ssrc: int = 7, pt: int = 8) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq, stamp, ssrc) + b"\xd5" * 160


async def test_the_echo_sends_every_datagram_back_to_its_sender_and_counts_them() -> None:
    transport, echo = await open_echo("127.0.0.1", 0)
    port = transport.get_extra_info("sockname")[1]
    loop = asyncio.get_running_loop()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)
    try:
        sent = [rtp(n, 160 * n) for n in range(5)]
        for packet in sent:
            client.sendto(packet, ("127.0.0.1", port))
        back = [await asyncio.wait_for(loop.sock_recv(client, 2048), 10) for _ in sent]
    finally:
        client.close()
        transport.close()
    assert back == sent
    assert echo.counts() == {"received": 5, "echoed": 5, "errors": 0}


def stream(
    times_ms: list[float], *, first_slot: int = 0, seq0: int = 100, ssrc: int = 9, src: int = 4000
) -> list[PacketSeen]:
    """Packets of one stream, slot i at times_ms[i] (None: not sent), to port 5000."""
    return [
        (t / 1000.0, src, 5000, ssrc, (seq0 + i) & 0xFFFF, (160 * (first_slot + i)) & 0xFFFFFFFF, 8)
        for i, t in enumerate(times_ms)
    ]


def test_a_packet_off_its_streams_20ms_grid_shows_as_jitter_and_a_constant_delay_does_not() -> None:
    on_time = [1000.0 + 20 * i + 3.0 for i in range(50)]  # 3 ms behind the grid, every one
    late = list(on_time)
    late[10] += 7.0
    report = analyse(stream(late) + stream(on_time, ssrc=10, src=4002), 0.0, 10.0)
    assert report.streams == 2 and report.packets == 100
    assert report.missing == 0 and report.sequence_gaps == 0
    assert sorted(report.deviations_ms)[-1] == pytest.approx(7.0)
    assert sorted(report.deviations_ms)[-2] == pytest.approx(0.0, abs=1e-6)


def test_one_packet_a_slot_early_does_not_shift_the_grid_of_its_stream() -> None:
    times = [1000.0 + 20 * i for i in range(50)]
    times[30] -= 18.0  # SIPp's millisecond clock does this
    report = analyse(stream(times), 0.0, 10.0)
    assert max(report.deviations_ms) == pytest.approx(18.0)
    assert sorted(report.deviations_ms)[-2] == pytest.approx(0.0, abs=1e-6)


def test_skipped_slots_and_lost_packets_are_missing_and_lost_ones_are_sequence_gaps_too() -> None:
    lost = stream([1000.0 + 20 * i for i in range(10)])
    del lost[5]  # lost on the way: its sequence number and its slot are missing
    skipping = [  # a sender giving up slot 5: the timestamp jumps, the sequence does not
        (1.0 + 0.02 * slot, 4002, 5000, 10, n, 160 * slot, 8)
        for n, slot in enumerate([0, 1, 2, 3, 4, 6, 7, 8])
    ]
    report = analyse(lost + skipping, 0.0, 10.0)
    assert report.streams == 2
    assert report.missing == 2
    assert report.sequence_gaps == 1


def test_only_the_window_the_port_and_the_payload_type_count_and_rtcp_never_does() -> None:
    packets = stream([1000.0 + 20 * i for i in range(10)])
    other_port = [(t, s, 6000, x, q, st, pt) for t, s, _, x, q, st, pt in stream([1000.0], ssrc=11)]
    dtmf = [(1.05, 4000, 5000, 9, 999, 12345, 101)]
    rtcp = [(1.05, 4000, 5000, 9, 0, 0, 72)]
    report = analyse(packets + other_port + dtmf + rtcp, 1.04, 10.0, dst=5000, payload_type=8)
    assert report.streams == 1 and report.packets == 8


def test_echo_delays_match_each_echo_to_its_original_and_count_the_unanswered() -> None:
    sent = [(1.0 + 0.02 * i, 4000, 7000, 9, i, 160 * i, 8) for i in range(10)]
    echoed = [
        (t + 0.001 + (0.004 if q == 3 else 0.0), 7000, 4000, x, q, st, pt) for t, _, _, x, q, st, pt in sent
    ]
    del echoed[7]
    report = echo_delays(sent + echoed, 0.0, 10.0, sent_to=7000, echoed_to=4000)
    assert report.sent == 10 and report.unanswered == 1
    assert sorted(report.delays_ms)[-1] == pytest.approx(5.0)
    assert sorted(report.jitter_ms)[-1] == pytest.approx(4.0)


def test_the_capture_keeps_what_is_sent_to_its_ports_and_nothing_else() -> None:
    require_packet_capture()
    receivers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for r in receivers:
            r.bind(("127.0.0.1", 0))
        sender.bind(("127.0.0.1", 0))
        source = sender.getsockname()[1]
        ports = [r.getsockname()[1] for r in receivers]
        with RtpCapture(ports[:2]) as capture:
            for n in range(3):
                for port in ports:
                    sender.sendto(rtp(n, 160 * n, ssrc=port), ("127.0.0.1", port))
            deadline = time.monotonic() + 10
            while len(capture.packets()) < 6 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)  # anything wrongly let through would be there by now
            seen = capture.packets()
            assert capture.dropped() == 0
    finally:
        sender.close()
        for r in receivers:
            r.close()
    assert sorted((src, dst, ssrc, seq) for _, src, dst, ssrc, seq, _, _ in seen) == sorted(
        (source, port, port, n) for port in ports[:2] for n in range(3)
    )
