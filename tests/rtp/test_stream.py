from __future__ import annotations

import random

import pytest

from palaver.rtp.dtmf import DtmfError, dtmf_packets
from palaver.rtp.packet import RtpPacket
from palaver.rtp.rtcp import ReceiverReport, parse_compound
from palaver.rtp.srtp import SrtpContext, SrtpParams, generate_key
from palaver.rtp.stream import FRAME_SECONDS, MediaStream, PlayoutQueue, StreamConfig

PEER = ("192.0.2.9", 4000)
ULAW_SILENCE = b"\xff" * 160


def config(**kw: object) -> StreamConfig:
    base: dict[str, object] = {"payload_type": 0, "encoding": "PCMU", "remote": PEER, "telephone_event": 101}
    base.update(kw)
    return StreamConfig(**base)  # type: ignore[arg-type]


def make(now: float = 0.0, **kw: object) -> tuple[MediaStream, list[bytes], list[str], list[str]]:
    s = MediaStream(config(**kw), now, rng=random.Random(7))
    frames: list[bytes] = []
    digits: list[str] = []
    events: list[str] = []
    s.on_audio = frames.append
    s.on_dtmf = digits.append
    s.on_started = lambda t: events.append(f"started {t}")
    s.on_stopped = lambda t: events.append(f"stopped {t}")
    return s, frames, digits, events


def rtp(seq: int, payload: bytes, *, pt: int = 0, ts: int | None = None, ssrc: int = 5) -> bytes:
    return bytes(
        RtpPacket(pt, seq & 0xFFFF, (seq * len(payload) if ts is None else ts) & 0xFFFFFFFF, ssrc, payload)
    )


def tone(i: int, n: int = 160) -> bytes:
    return bytes([(i * 7 + k) % 120 for k in range(n)])


def run_ticks(s: MediaStream, start: float, count: int) -> list[RtpPacket]:
    sent: list[RtpPacket] = []
    for k in range(count):
        now = start + k * FRAME_SECONDS
        sent += [RtpPacket.parse(p) for p, _ in s.due_packets(now)]
        s.flush_events()
        s.poll(now)
    return sent


# ---------------------------------------------------------------- receive


def test_30ms_packets_become_20ms_frames_in_order() -> None:
    s, frames, _, _ = make(fill_silence=False)
    payloads = [tone(i, 240) for i in range(10)]
    t = 0.0
    for i, p in enumerate(payloads):  # SIPp's pcap: 240-byte PCMA-style packets every 30 ms
        s.datagram(rtp(i, p), PEER, i * 0.030)
        while t <= i * 0.030:
            s.poll(t)
            t += FRAME_SECONDS
    for _ in range(20):
        s.poll(t)
        t += FRAME_SECONDS
    assert all(len(f) == 160 for f in frames)
    assert b"".join(frames) == b"".join(payloads)
    assert s.stats.received == 10 and s.rtcp.reception.lost == 0


def test_loss_is_concealed_with_silence_and_counted() -> None:
    s, frames, _, _ = make(fill_silence=False)
    for seq in (0, 1, 3, 4):
        s.datagram(rtp(seq, tone(seq)), PEER, seq * FRAME_SECONDS)
    for k in range(10):
        s.poll(k * FRAME_SECONDS)
    assert frames == [tone(0), tone(1), ULAW_SILENCE, tone(3), tone(4)]
    assert s.stats.concealed_frames == 1
    assert s.rtcp.reception.lost == 1


def test_silence_fill_only_after_audio_started() -> None:
    s, frames, _, _ = make()
    for k in range(5):
        s.poll(k * FRAME_SECONDS)
    assert frames == []  # nothing before the first packet
    s.datagram(rtp(0, tone(0)), PEER, 0.1)
    for k in range(5, 15):
        s.poll(k * FRAME_SECONDS)
    assert frames[0] == tone(0)
    assert frames[1:] == [ULAW_SILENCE] * (len(frames) - 1)
    assert s.stats.fill_frames == len(frames) - 1 > 0


def test_payload_type_filter_and_comfort_noise() -> None:
    s, frames, _, _ = make(now=0.0, inactivity_seconds=1.0)
    s.datagram(rtp(0, tone(0), pt=9), PEER, 0.5)  # G.722: not negotiated
    assert s.stats.payload_type_dropped == 1
    assert s.latched is None
    s.datagram(rtp(1, b"\x40", pt=13), PEER, 0.9)  # comfort noise: proves liveness only
    assert s.latched == PEER
    assert not s.check_inactive(1.5)
    assert s.check_inactive(2.0)
    assert not s.check_inactive(5.0)  # once
    for k in range(10):
        s.poll(1.0 + k * FRAME_SECONDS)
    assert frames == []


def test_non_rtp_and_malformed_dropped() -> None:
    s, _, _, _ = make()
    s.datagram(b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12), PEER, 0.0)  # STUN
    s.datagram(b"", PEER, 0.0)
    s.datagram(b"\x80\x00\x00", PEER, 0.0)  # RTP-looking, truncated
    s.datagram(rtp(1, b""), PEER, 0.0)  # empty audio payload
    assert s.stats.non_rtp_dropped == 2
    assert s.stats.malformed == 2
    assert s.latched is None and s.stats.received == 0


def test_latching_prefers_the_real_source_and_ignores_others() -> None:
    s, _, _, _ = make()
    nat = ("198.51.100.1", 30000)
    assert s.send_target == PEER
    s.datagram(rtp(0, tone(0)), nat, 0.0)
    assert s.latched == nat and s.send_target == nat
    s.datagram(rtp(1, tone(1)), PEER, 0.02)
    assert s.stats.foreign_dropped == 1 and s.stats.received == 1
    assert s.rtcp_target == ("198.51.100.1", 30001)


def test_dtmf_one_digit_per_press_with_repeated_end_packets() -> None:
    s, _, digits, _ = make()
    press = dtmf_packets("7", 800, sequence_number=10, ssrc=5, payload_type=101)
    for p in (*press, press[-1], press[-1]):
        s.datagram(bytes(p), PEER, 0.0)
    again = dtmf_packets("#", 1600, sequence_number=20, ssrc=5, payload_type=101)
    for p in again:
        s.datagram(bytes(p), PEER, 0.1)
    assert digits == ["7", "#"]
    assert s.stats.dtmf_digits == 2


def test_no_telephone_event_negotiated_drops_events() -> None:
    s, _, digits, _ = make(telephone_event=None)
    for p in dtmf_packets("1", 0, sequence_number=1, ssrc=5):
        s.datagram(bytes(p), PEER, 0.0)
    assert digits == [] and s.stats.payload_type_dropped == 4


@pytest.mark.parametrize("direction", ["sendonly", "recvonly", "inactive"])
def test_inactivity_not_watched_on_hold(direction: str) -> None:
    s, _, _, _ = make(direction=direction, inactivity_seconds=1.0)
    assert not s.check_inactive(100.0)


def test_update_restarts_inactivity_and_keeps_send_stream() -> None:
    s, _, _, _ = make(inactivity_seconds=1.0)
    first = run_ticks(s, 0.0, 3)
    s.update(config(inactivity_seconds=1.0, remote=("192.0.2.10", 5000)), 0.9)
    assert not s.check_inactive(1.5)
    assert s.check_inactive(2.0)
    later = run_ticks(s, 0.06, 2)
    seqs = [p.sequence_number for p in first + later]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(5)]
    assert {p.ssrc for p in first + later} == {s.ssrc}
    assert s.send_target == ("192.0.2.10", 5000)


def test_srtp_receive_and_send() -> None:
    params = SrtpParams("AES_CM_128_HMAC_SHA1_80", generate_key(), generate_key())
    peer = SrtpContext(params.reversed())
    s, frames, _, _ = make(srtp=params, fill_silence=False)
    wire = peer.protect(rtp(0, tone(0)))
    assert wire is not None
    s.datagram(wire, PEER, 0.0)
    s.datagram(rtp(1, tone(1)), PEER, 0.0)  # unauthenticated
    for k in range(5):
        s.poll(k * FRAME_SECONDS)
    assert frames == [tone(0)]
    assert s.stats.srtp_dropped == 1
    out = [p for p, _ in s.due_packets(1.0)]
    clear = peer.unprotect(out[0])
    assert clear is not None and RtpPacket.parse(clear).payload == ULAW_SILENCE


def test_rtcp_mux_and_reports() -> None:
    s, _, _, _ = make()
    run_ticks(s, 0.0, 5)
    s.datagram(rtp(0, tone(0)), PEER, 0.0)
    report = s.rtcp_report(3.0, 1_700_000_000.0)
    assert report is not None
    sr = parse_compound(report)[0]
    assert sr.ssrc == s.ssrc  # type: ignore[union-attr]
    peer_rr = bytes(ReceiverReport(5))
    s.datagram(peer_rr, PEER, 3.1, 1_700_000_000.1)
    assert s.rtcp_mux and s.rtcp_target == PEER
    assert s.stats.rtcp_received == 1
    s.rtcp_datagram(peer_rr, ("203.0.113.1", 9), 3.2)  # another host
    assert s.stats.foreign_dropped == 1


# ---------------------------------------------------------------- send


def test_slots_timestamps_and_first_marker() -> None:
    s, _, _, _ = make()
    sent = run_ticks(s, 10.0, 5)
    assert [p.payload for p in sent] == [ULAW_SILENCE] * 5
    assert [p.marker for p in sent] == [True, False, False, False, False]
    assert [(p.timestamp - sent[0].timestamp) & 0xFFFFFFFF for p in sent] == [0, 160, 320, 480, 640]
    assert [(p.sequence_number - sent[0].sequence_number) & 0xFFFF for p in sent] == [0, 1, 2, 3, 4]


def test_late_caller_bursts_at_most_two_then_catches_up() -> None:
    s, _, _, _ = make()
    s.due_packets(0.0)
    got = s.due_packets(0.1)  # 5 slots due (1..5)
    assert [at for _, at in got] == pytest.approx([0.02, 0.04])
    got = s.due_packets(0.1)
    assert [at for _, at in got] == pytest.approx([0.06, 0.08])
    got = s.due_packets(0.12)
    assert [at for _, at in got] == pytest.approx([0.10, 0.12])
    assert s.due_packets(0.12) == []
    assert s.stats.late_slots == 4
    assert s.stats.skipped_slots == 0


def test_long_stall_skips_slots_and_marks_the_restart() -> None:
    s, _, _, _ = make()
    s.play(tone(1) + tone(2), "a")
    first = RtpPacket.parse(s.due_packets(0.0)[0][0])
    got = [(RtpPacket.parse(p), at) for p, at in s.due_packets(1.0)]  # 50 slots late
    assert s.stats.skipped_slots == 48
    assert [at for _, at in got] == pytest.approx([0.98, 1.0])
    pkt, _ = got[0]
    assert pkt.payload == tone(2)  # the queued audio is delayed, not dropped
    assert pkt.marker
    assert (pkt.timestamp - first.timestamp) & 0xFFFFFFFF == 49 * 160  # follows the wall clock
    assert pkt.sequence_number == (first.sequence_number + 1) & 0xFFFF


def test_tags_started_stopped_and_markers() -> None:
    s, _, _, events = make()
    s.play(tone(1) + tone(2)[:100], "a")
    s.play(tone(2)[100:], "a")  # chunks of one tag join seamlessly
    s.play(tone(3)[:50], "b")  # a partial last frame is padded
    sent = run_ticks(s, 0.0, 6)
    assert [p.payload for p in sent] == [tone(1), tone(2), tone(3)[:50] + b"\xff" * 110] + [ULAW_SILENCE] * 3
    assert [p.marker for p in sent] == [True, False, False, False, False, False]
    assert events == ["started a", "stopped a", "started b", "stopped b"]
    assert (s.played_ms("a"), s.played_ms("b"), s.played_ms("zz")) == (40, 20, 0)
    s.play(tone(4), "c")
    sent = run_ticks(s, 0.12, 2)
    assert sent[0].marker and sent[0].payload == tone(4)


def test_clear_ends_run_silently() -> None:
    s, _, _, events = make()
    s.play(b"".join(tone(i) for i in range(10)), "a")
    run_ticks(s, 0.0, 3)
    s.clear()
    sent = run_ticks(s, 0.06, 3)
    assert [p.payload for p in sent] == [ULAW_SILENCE] * 3
    assert events == ["started a"]
    assert s.played_ms("a") == 60


def test_recvonly_drains_queue_without_sending() -> None:
    s, _, _, events = make(direction="recvonly")
    s.play(tone(1), "a")
    assert run_ticks(s, 0.0, 3) == []
    assert events == ["started a", "stopped a"]


def test_send_silence_off_sends_only_audio() -> None:
    s, _, _, _ = make(send_silence=False)
    s.play(tone(1), "a")
    sent = run_ticks(s, 0.0, 4)
    assert [p.payload for p in sent] == [tone(1)]
    s.play(tone(2), "b")
    sent = run_ticks(s, 0.08, 2)
    assert sent[0].marker


def test_dtmf_out_sequence_pauses_audio() -> None:
    s, _, _, _ = make()
    s.play(tone(1) + tone(2), "a")
    run_ticks(s, 0.0, 1)
    s.send_dtmf("3", 100)
    sent = run_ticks(s, 0.02, 9)
    events = [p for p in sent if p.payload_type == 101]
    assert len(events) == 7  # 4 updates, 3 end packets
    assert events[0].marker and not any(p.marker for p in events[1:])
    assert len({p.timestamp for p in events}) == 1
    assert [int.from_bytes(p.payload[2:4], "big") for p in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [p.payload[1] >> 7 for p in events] == [0, 0, 0, 0, 1, 1, 1]
    audio = [p for p in sent if p.payload_type == 0]
    assert [p.payload for p in audio] == [ULAW_SILENCE, ULAW_SILENCE, tone(2), ULAW_SILENCE]
    assert audio[2].marker
    seqs = [p.sequence_number for p in sent]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(len(sent))]


def test_dtmf_out_errors() -> None:
    s, _, _, _ = make(telephone_event=None)
    with pytest.raises(DtmfError, match="did not negotiate"):
        s.send_dtmf("1")
    s, _, _, _ = make()
    with pytest.raises(DtmfError, match="not a DTMF digit"):
        s.send_dtmf("x")
    with pytest.raises(DtmfError, match="too long"):
        s.send_dtmf("1", 10_000)


def test_playout_queue_accounting() -> None:
    q = PlayoutQueue(0xD5)
    q.play(b"", "a")
    assert q.next_frame() is None
    q.play(b"\x01" * 400, "a")
    assert len(q) == 400
    assert q.next_frame() == ("a", b"\x01" * 160)
    assert q.next_frame() == ("a", b"\x01" * 160)
    assert q.next_frame() == ("a", b"\x01" * 80 + b"\xd5" * 80)
    assert len(q) == 0
    q.play(b"\x02" * 10, "b")
    assert q.clear() == 10


def test_packets_with_csrc_extension_padding_take_the_full_parser() -> None:
    s, frames, _, _ = make(fill_silence=False)
    fancy = RtpPacket(0, 0, 0, 5, tone(0), csrc=(9,), extension=(0xBEDE, b"\x10\x01\x00\x00"), padding=4)
    s.datagram(bytes(fancy), PEER, 0.0)
    for k in range(5):
        s.poll(k * FRAME_SECONDS)
    assert frames == [tone(0)]


def test_nothing_due_before_the_anchor() -> None:
    s, _, _, _ = make()
    s.anchor = 1.0
    assert s.due_packets(0.99) == []
    assert len(s.due_packets(1.0)) == 1
