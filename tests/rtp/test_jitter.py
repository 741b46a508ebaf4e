from __future__ import annotations

import pytest

from palaver.rtp.jitter import Frame, JitterBuffer
from palaver.rtp.packet import RtpPacket


def pkt(seq: int, ssrc: int = 1, marker: bool = False) -> RtpPacket:
    seq &= 0xFFFF
    return RtpPacket(
        payload_type=0,
        sequence_number=seq,
        timestamp=(seq * 160) & 0xFFFFFFFF,
        ssrc=ssrc,
        payload=seq.to_bytes(2, "big"),
        marker=marker,
    )


def drain(jb: JitterBuffer, now: float) -> list[Frame]:
    out = []
    while (f := jb.pop(now)) is not None:
        out.append(f)
    return out


def seqs(frames: list[Frame]) -> list[tuple[int, bool]]:
    return [(f.sequence_number, f.concealed) for f in frames]


def test_in_order_playout_after_delay() -> None:
    jb = JitterBuffer(delay_frames=3)
    jb.push(pkt(10, marker=True), 0.0)
    assert jb.pop(0.059) is None
    f = jb.pop(0.060)
    assert f == Frame(10, 1600, b"\x00\x0a", marker=True)
    for i in range(11, 15):
        jb.push(pkt(i), (i - 10) * 0.02)
    assert seqs(drain(jb, 0.06 + 4 * 0.02)) == [(i, False) for i in range(11, 15)]
    assert jb.stats.played == 5
    assert jb.stats.lost == 0


def test_reorder() -> None:
    jb = JitterBuffer(delay_frames=3)
    for i, s in enumerate([1, 3, 2, 5, 4]):
        jb.push(pkt(s), i * 0.02)
    assert seqs(drain(jb, 1.0)) == [(s, False) for s in range(1, 6)]
    assert jb.stats.late == 0


def test_wraparound() -> None:
    jb = JitterBuffer()
    order = [65533, 65535, 65534, 0, 2, 1, 3]
    for i, s in enumerate(order):
        jb.push(pkt(s), i * 0.02)
    assert [f.sequence_number for f in drain(jb, 1.0)] == [65533, 65534, 65535, 0, 1, 2, 3]
    assert jb.stats.lost == 0


def test_loss_concealed() -> None:
    jb = JitterBuffer()
    for s in (1, 2, 4, 7):
        jb.push(pkt(s), 0.0)
    frames = drain(jb, 1.0)
    assert seqs(frames) == [(1, False), (2, False), (3, True), (4, False), (5, True), (6, True), (7, False)]
    assert frames[2].timestamp == 3 * 160
    assert frames[2].payload == b""
    assert jb.stats.lost == 3


def test_late_and_duplicate_dropped() -> None:
    jb = JitterBuffer(delay_frames=1)
    jb.push(pkt(1), 0.0)
    jb.push(pkt(3), 0.0)
    jb.push(pkt(3), 0.0)
    assert jb.stats.duplicates == 1
    assert seqs(drain(jb, 0.04)) == [(1, False), (2, True)]
    jb.push(pkt(2), 0.05)
    jb.push(pkt(1), 0.05)
    assert jb.stats.late == 2
    assert seqs(drain(jb, 0.06)) == [(3, False)]


def test_frames_due_one_per_frame_interval() -> None:
    jb = JitterBuffer(delay_frames=2)
    for s in range(5):
        jb.push(pkt(s), 0.0)
    assert len(drain(jb, 0.04)) == 1
    assert len(drain(jb, 0.059)) == 0
    assert len(drain(jb, 0.06)) == 1
    assert len(drain(jb, 0.10)) == 2


def test_underrun_then_resume_counts_gap() -> None:
    jb = JitterBuffer(delay_frames=1)
    jb.push(pkt(1), 0.0)
    assert seqs(drain(jb, 0.02)) == [(1, False)]
    assert jb.pop(0.04) is None
    assert jb.stats.underruns == 1
    jb.push(pkt(4), 0.10)
    assert jb.pop(0.11) is None
    assert seqs(drain(jb, 0.12)) == [(4, False)]
    assert jb.stats.lost == 2


def test_bounded_jump_resyncs() -> None:
    jb = JitterBuffer(capacity=8, delay_frames=0)
    jb.push(pkt(1), 0.0)
    jb.push(pkt(2), 0.0)
    jb.push(pkt(30000), 0.0)
    assert jb.stats.resets == 1
    assert len(jb) == 1
    assert seqs(drain(jb, 0.0)) == [(30000, False)]


def test_capacity_bounds_memory() -> None:
    jb = JitterBuffer(capacity=10)
    jb.push(pkt(0), 0.0)
    for s in range(1, 10):
        jb.push(pkt(s), 0.0)
    assert len(jb) == 10
    jb.push(pkt(10), 0.0)
    assert len(jb) == 1
    assert jb.stats.resets == 1


def test_new_ssrc_resets() -> None:
    jb = JitterBuffer(delay_frames=0)
    jb.push(pkt(100, ssrc=1), 0.0)
    jb.push(pkt(5, ssrc=2), 0.0)
    assert jb.stats.resets == 1
    assert seqs(drain(jb, 0.0)) == [(5, False)]


def test_invalid_config() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(frame_ms=0)
