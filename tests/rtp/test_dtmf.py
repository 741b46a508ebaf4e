from __future__ import annotations

import pytest

from palaver.rtp.dtmf import DIGITS, DtmfError, DtmfReceiver, TelephoneEvent, dtmf_packets
from palaver.rtp.packet import RtpPacket


def test_payload_round_trip() -> None:
    ev = TelephoneEvent(event=11, end=True, volume=63, duration=65535)
    assert bytes(ev) == b"\x0b\xbf\xff\xff"
    assert TelephoneEvent.parse(bytes(ev)) == ev
    assert ev.digit == "#"
    assert TelephoneEvent.parse(b"\x05\x0a\x01\x90") == TelephoneEvent(5, False, 10, 400)


def test_payload_reserved_bit_ignored() -> None:
    assert TelephoneEvent.parse(b"\x01\xca\x03\x20") == TelephoneEvent(1, True, 10, 800)


def test_payload_non_dtmf_event() -> None:
    assert TelephoneEvent(16).digit is None


@pytest.mark.parametrize("n", range(4))
def test_payload_truncated(n: int) -> None:
    with pytest.raises(DtmfError) as info:
        TelephoneEvent.parse(b"\x01\x0a\x00"[:n])
    assert str(info.value) == f"telephone-event payload length {n} is less than 4 bytes"


def test_payload_invalid_fields() -> None:
    with pytest.raises(DtmfError, match="volume 64 out of range 0-63"):
        TelephoneEvent(1, volume=64)
    with pytest.raises(DtmfError, match="duration 65536 out of range 0-65535"):
        TelephoneEvent(1, duration=65536)
    with pytest.raises(DtmfError, match="event 256 out of range 0-255"):
        TelephoneEvent(256)


def test_sender_sequence() -> None:
    pkts = dtmf_packets("5", 1000, sequence_number=65534, ssrc=42, duration_ms=160)
    events = [TelephoneEvent.parse(p.payload) for p in pkts]
    assert [e.duration for e in events] == [400, 800, 1200, 1280, 1280, 1280]
    assert [e.end for e in events] == [False, False, False, True, True, True]
    assert {e.event for e in events} == {5}
    assert [p.marker for p in pkts] == [True, False, False, False, False, False]
    assert [p.sequence_number for p in pkts] == [65534, 65535, 0, 1, 2, 3]
    assert {p.timestamp for p in pkts} == {1000}
    assert {p.payload_type for p in pkts} == {101}
    assert {p.ssrc for p in pkts} == {42}


def test_sender_short_event() -> None:
    pkts = dtmf_packets("a", 0, sequence_number=0, ssrc=1, duration_ms=40, payload_type=96)
    events = [TelephoneEvent.parse(p.payload) for p in pkts]
    assert [(e.event, e.end, e.duration) for e in events] == [(12, False, 320)] + [(12, True, 320)] * 3


def test_sender_rejects() -> None:
    with pytest.raises(DtmfError, match="'x' is not a DTMF digit"):
        dtmf_packets("x", 0, sequence_number=0, ssrc=1)
    with pytest.raises(DtmfError, match="exceeds 65535"):
        dtmf_packets("1", 0, sequence_number=0, ssrc=1, duration_ms=9000)


def _feed(rx: DtmfReceiver, packets: list[RtpPacket]) -> str:
    return "".join(d for p in packets if (d := rx.feed(p)) is not None)


def _press(digit: str, ts: int, seq: int, ssrc: int = 9) -> list[RtpPacket]:
    return list(dtmf_packets(digit, ts, sequence_number=seq, ssrc=ssrc))


def test_receiver_all_digits_round_trip() -> None:
    rx = DtmfReceiver()
    packets: list[RtpPacket] = []
    seq = 0
    for i, d in enumerate(DIGITS):
        press = _press(d, 10_000 + 2000 * i, seq)
        seq += len(press)
        packets += press
    assert _feed(rx, packets) == DIGITS


def test_receiver_same_digit_twice() -> None:
    rx = DtmfReceiver()
    assert _feed(rx, _press("7", 0, 0) + _press("7", 1600, 10)) == "77"


def test_receiver_first_packet_lost() -> None:
    rx = DtmfReceiver()
    press = _press("3", 500, 100)
    assert _feed(rx, press[1:]) == "3"


def test_receiver_only_end_packet_arrives() -> None:
    rx = DtmfReceiver()
    assert _feed(rx, _press("9", 500, 100)[-1:]) == "9"


def test_receiver_retransmission_and_reorder() -> None:
    rx = DtmfReceiver()
    a = _press("1", 0, 0)
    b = _press("2", 1600, 6)
    assert len(a) == len(b) == 4
    stream = [a[0], a[1], a[0], b[0], a[3], a[2], b[2], b[1], b[3], b[3], a[1]]
    assert _feed(rx, stream) == "12"


def test_receiver_ignores_other_payload_types_and_garbage() -> None:
    rx = DtmfReceiver(payload_type=101)
    audio = RtpPacket(payload_type=0, sequence_number=1, timestamp=0, ssrc=9, payload=b"\x01\x0a\x00\x00")
    short = RtpPacket(payload_type=101, sequence_number=2, timestamp=0, ssrc=9, payload=b"\x01")
    flash = RtpPacket(
        payload_type=101, sequence_number=3, timestamp=0, ssrc=9, payload=bytes(TelephoneEvent(16))
    )
    assert _feed(rx, [audio, short, flash]) == ""


def test_receiver_new_ssrc_resets() -> None:
    rx = DtmfReceiver()
    assert _feed(rx, _press("4", 0, 0, ssrc=1) + _press("4", 0, 0, ssrc=2)) == "44"


def test_receiver_long_event_segments_count_once() -> None:
    rx = DtmfReceiver()
    first = [
        RtpPacket(101, 1, 0, 9, bytes(TelephoneEvent(8, duration=400)), marker=True),
        RtpPacket(101, 2, 0, 9, bytes(TelephoneEvent(8, duration=0xFFFF))),
    ]
    second = [
        RtpPacket(101, 3, 0xFFFF, 9, bytes(TelephoneEvent(8, duration=400))),
        RtpPacket(101, 4, 0xFFFF, 9, bytes(TelephoneEvent(8, end=True, duration=800))),
    ]
    assert _feed(rx, first + second) == "8"
