from __future__ import annotations

import random

import pytest

from palaver.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReceptionStats,
    ReportBlock,
    RtcpError,
    RtcpSession,
    SdesChunk,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    ntp_middle32,
    ntp_timestamp,
    parse_compound,
)

BLOCK = ReportBlock(0x11223344, 25, 300, 0x0001_0010, 80, 0xAABBCCDD, 0x00018000)
BLOCK_BYTES = bytes.fromhex("11223344 19 00012c 00010010 00000050 aabbccdd 00018000")


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_report_block_bytes_and_negative_loss() -> None:
    assert bytes(BLOCK) == BLOCK_BYTES
    assert ReportBlock.parse(BLOCK_BYTES, 0) == BLOCK
    neg = ReportBlock(1, 0, -2, 0, 0)
    assert bytes(neg)[4:8] == h("00fffffe")
    assert ReportBlock.parse(bytes(neg), 0).cumulative_lost == -2
    assert bytes(ReportBlock(1, 0, 1 << 30, 0, 0))[5:8] == h("7fffff")  # clamped


def test_sender_report_vector() -> None:
    sr = SenderReport(0xDEADBEEF, 0xE1234567_80000000, 1000, 50, 8000, (BLOCK,))
    expected = h("81c8000c deadbeef e1234567 80000000 000003e8 00000032 00001f40") + BLOCK_BYTES
    assert bytes(sr) == expected
    assert parse_compound(expected) == [sr]


def test_receiver_report_sdes_bye_compound() -> None:
    rr = ReceiverReport(0x01020304)
    sdes = SourceDescription((SdesChunk(0x01020304, ((1, b"ab"),)),))
    bye = Bye((0x01020304,), "done")
    wire = bytes(rr) + bytes(sdes) + bytes(bye)
    assert wire == h(
        "80c90001 01020304"  # RR, no blocks
        "81ca0003 01020304 0102 6162 00000000"  # SDES: CNAME "ab", null item + padding
        "81cb0003 01020304 04646f6e 65000000"  # BYE with reason "done"
    )
    assert parse_compound(wire) == [rr, sdes, bye]
    assert sdes.chunks[0].cname == "ab"


def test_sdes_word_aligned_item_gets_a_full_null_word() -> None:
    chunk = SdesChunk(1, ((1, b"abcd"),))  # 4 + 2 + 4 = 10 -> 12 bytes
    assert len(bytes(chunk)) == 12
    chunk = SdesChunk(1, ((1, b"abcdef"),))  # 4 + 2 + 6 = 12 -> needs a null: 16 bytes
    assert bytes(chunk)[-4:] == b"\x00" * 4


def test_unknown_types_and_padding_kept() -> None:
    app = h("80cc0002 00000001 6e616d65")  # APP
    padded_rr = h("a0c90002 00000009 00000004")  # P bit, 4 padding bytes
    packets = parse_compound(app + padded_rr)
    assert packets == [UnknownRtcp(204, 0, h("00000001 6e616d65")), ReceiverReport(9)]
    assert bytes(packets[0]) == app


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (h("80c9"), "less than 4 bytes"),
        (h("40c90001 00000001"), "version 1"),
        (h("80c90002 00000001"), "truncated"),
        (h("81c90001 00000001"), "RR with 1 report blocks needs 28 bytes"),
        (h("81c80006") + bytes(24), "SR with 1 report blocks"),
        (h("81ca0001 00000001"), "SDES chunk without its terminating null item"),
        (h("81ca0002 00000001 0105 6100"), "SDES item truncated"),
        (h("82cb0001 00000001"), "BYE with 2 sources"),
        (h("81cb0002 00000001 09616263"), "BYE reason truncated"),
        (h("a0c90001 00000000") + h("80c90001 00000001"), "bad RTCP padding"),
        (h("80c90001 00000001 0000"), "2 trailing bytes"),
    ],
)
def test_malformed(data: bytes, message: str) -> None:
    with pytest.raises(RtcpError, match=message):
        parse_compound(data)


def test_ntp_conversion() -> None:
    assert ntp_timestamp(0.0) == 2208988800 << 32
    assert ntp_timestamp(1.5) == ((2208988801 << 32) | 0x80000000)
    assert ntp_middle32(0x0123456789ABCDEF) == 0x456789AB


def test_reception_loss_reorder_wrap_and_fraction() -> None:
    r = ReceptionStats()
    for seq in [65533, 65534, 0, 65535, 2, 3]:  # reorder across the wrap; 1 lost
        r.update(7, seq, seq * 160, 0.0, timing=False)
    assert (r.received, r.expected, r.lost, r.extended_max) == (6, 7, 1, 0x10003)
    b = r.report_block()
    assert b is not None
    assert (b.fraction_lost, b.cumulative_lost, b.highest_seq) == (256 // 7, 1, 0x10003)
    for seq in range(4, 8):
        r.update(7, seq, 0, 0.0, timing=False)
    b = r.report_block()
    assert b is not None and b.fraction_lost == 0 and b.cumulative_lost == 1


def test_reception_restart_after_big_jump_confirmed() -> None:
    r = ReceptionStats()
    r.update(1, 100, 0, 0.0)
    r.update(1, 20000, 0, 0.0)  # one stray packet: ignored
    assert r.received == 1
    r.update(1, 20001, 0, 0.0)  # the jump continues: the source restarted
    assert (r.base_seq, r.received, r.lost) == (20001, 1, 0)
    r.update(2, 5, 0, 0.0)  # a new SSRC starts over
    assert (r.ssrc, r.base_seq) == (2, 5)


def test_reception_jitter_follows_rfc3550() -> None:
    r = ReceptionStats()
    r.update(1, 0, 0, 0.000)
    r.update(1, 1, 160, 0.020)  # on time
    assert r.jitter == 0
    r.update(1, 2, 320, 0.050)  # 10 ms late = 80 units: J += (80 - 0) / 16
    assert r.jitter == pytest.approx(5.0)


def test_session_sr_then_peer_rr_gives_rtt() -> None:
    ours = RtcpSession(ssrc=0xAAAA, cname="us", rng=random.Random(1))
    peer = RtcpSession(ssrc=0xBBBB, cname="them", rng=random.Random(2))
    assert not ours.due(100.0)  # first report half an interval in
    assert ours.due(102.5)
    # The peer has sent us two packets.
    ours.reception.update(0xBBBB, 10, 0, 100.0)
    ours.reception.update(0xBBBB, 11, 160, 100.02)
    sr = ours.build(102.5, 1_700_000_000.0, (50, 8000, 1234))
    assert not ours.due(102.5 + 2.49)
    assert ours.due(102.5 + 7.5)
    packets = peer.receive(sr, 50.0, 1_700_000_000.1)
    assert isinstance(packets[0], SenderReport)
    assert packets[0].reports[0].ssrc == 0xBBBB
    assert peer.remote.cname == "us"
    peer.reception.update(0xAAAA, 1, 0, 50.0)
    peer.reception.update(0xAAAA, 3, 320, 50.04)  # one of ours lost
    rr = peer.build(50.25, 1_700_000_000.35, None)  # answered 250 ms after our SR arrived
    assert isinstance(parse_compound(rr)[0], ReceiverReport)
    ours.receive(rr, 103.0, 1_700_000_000.5)
    assert ours.remote.reports == 1
    assert ours.remote.cumulative_lost == 1
    assert ours.remote.fraction_lost == pytest.approx(85 / 256)
    assert ours.remote.rtt_ms == pytest.approx(250.0, abs=0.1)  # 500 ms total - 250 ms held


def test_session_bye_and_malformed_counted() -> None:
    s = RtcpSession(ssrc=1, cname="x")
    wire = s.build(0.0, 0.0, None, bye="")
    assert [type(p) for p in parse_compound(wire)] == [ReceiverReport, SourceDescription, Bye]
    assert parse_compound(wire)[2] == Bye((1,))
    assert s.receive(b"\x80\xc9\x00", 0.0) == []
    assert s.malformed == 1
    s.receive(bytes(Bye((9,))), 0.0)
    assert s.remote.byes == 1
