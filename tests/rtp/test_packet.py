from __future__ import annotations

import pytest

from palaver.rtp.packet import RtpError, RtpPacket, classify

# A captured-style PCMU packet: V=2, M=1, PT=0, seq 0x1234, ts 0xdeadbeef, SSRC 0x01020304.
PCMU = bytes.fromhex("80801234deadbeef01020304") + b"\xff" * 160


def test_parse_basic() -> None:
    p = RtpPacket.parse(PCMU)
    assert p.version == 2
    assert p.marker is True
    assert p.payload_type == 0
    assert p.sequence_number == 0x1234
    assert p.timestamp == 0xDEADBEEF
    assert p.ssrc == 0x01020304
    assert p.payload == b"\xff" * 160
    assert p.csrc == ()
    assert p.extension is None
    assert p.padding == 0
    assert bytes(p) == PCMU


FULL = RtpPacket(
    payload_type=101,
    sequence_number=65535,
    timestamp=4294967295,
    ssrc=7,
    payload=b"\x01\x8a\x03\x20",
    marker=True,
    csrc=(1, 2, 0xFFFFFFFF),
    extension=(0xBEDE, b"\x10\xaa\x00\x00"),
    padding=4,
)


@pytest.mark.parametrize(
    "packet",
    [
        FULL,
        RtpPacket(payload_type=8, sequence_number=0, timestamp=0, ssrc=0),
        RtpPacket(payload_type=0, sequence_number=1, timestamp=160, ssrc=1, extension=(1, b"")),
        RtpPacket(payload_type=0, sequence_number=1, timestamp=160, ssrc=1, padding=1, payload=b"x"),
        RtpPacket(payload_type=127, sequence_number=1, timestamp=160, ssrc=1, csrc=tuple(range(15))),
    ],
)
def test_round_trip(packet: RtpPacket) -> None:
    raw = bytes(packet)
    assert RtpPacket.parse(raw) == packet
    assert bytes(RtpPacket.parse(raw)) == raw


def test_full_layout() -> None:
    raw = bytes(FULL)
    assert raw[0] == 0x80 | 0x20 | 0x10 | 3
    assert raw[1] == 0x80 | 101
    assert raw[-1] == 4
    assert len(raw) == 12 + 12 + 4 + 4 + 4 + 4


def test_every_truncation_raises() -> None:
    # RTP carries no length field, so a cut inside the payload is undetectable;
    # every cut inside the header (fixed part, CSRCs, extension) must raise, and
    # with a zero-filled payload every cut of the padded tail raises as well.
    packet = RtpPacket(
        payload_type=0,
        sequence_number=1,
        timestamp=2,
        ssrc=3,
        payload=bytes(8),
        csrc=(1, 2, 0xFFFFFFFF),
        extension=(0xBEDE, b"\x10\xaa\x00\x00"),
        padding=4,
    )
    raw = bytes(packet)
    for n in range(len(raw)):
        with pytest.raises(RtpError):
            RtpPacket.parse(raw[:n])
    assert RtpPacket.parse(raw) == packet


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RTP packet length 0 is less than 12 bytes"),
        (PCMU[:11], "RTP packet length 11 is less than 12 bytes"),
        (bytes.fromhex("40001234deadbeef01020304"), "RTP packet has version 1, expected 2"),
        (
            bytes.fromhex("82001234deadbeef01020304") + b"\0" * 4,
            "RTP packet length 16 is too short for 2 CSRCs (20 bytes)",
        ),
        (
            bytes.fromhex("90001234deadbeef01020304") + b"\xbe\xde",
            "RTP packet length 14 is too short for the extension header (16 bytes)",
        ),
        (
            bytes.fromhex("90001234deadbeef01020304") + b"\xbe\xde\x00\x02" + b"\0" * 7,
            "RTP packet length 23 is too short for a 8-byte extension (24 bytes)",
        ),
        (
            bytes.fromhex("a0001234deadbeef01020304"),
            "RTP packet has the padding bit set but no padding length byte",
        ),
        (bytes.fromhex("a0001234deadbeef01020304") + b"ab\x00", "RTP packet padding length is 0"),
        (
            bytes.fromhex("a0001234deadbeef01020304") + b"ab\x04",
            "RTP packet padding length 4 exceeds the 3 bytes after the header",
        ),
    ],
)
def test_error_text(data: bytes, message: str) -> None:
    with pytest.raises(RtpError) as info:
        RtpPacket.parse(data)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"payload_type": 128}, "payload type 128 out of range 0-127"),
        ({"sequence_number": 65536}, "sequence number 65536 out of range 0-65535"),
        ({"timestamp": -1}, "timestamp -1 out of range 0-4294967295"),
        ({"ssrc": 1 << 32}, "SSRC 4294967296 out of range 0-4294967295"),
        ({"csrc": tuple(range(16))}, "16 CSRCs (at most 15)"),
        ({"extension": (1, b"abc")}, "extension length 3 is not a multiple of 4"),
        ({"padding": 256}, "padding 256 out of range 0-255"),
        ({"version": 1}, "RTP version 1 (only 2 is supported)"),
    ],
)
def test_invalid_fields(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"payload_type": 0, "sequence_number": 0, "timestamp": 0, "ssrc": 0}
    base.update(kwargs)
    with pytest.raises(RtpError) as info:
        RtpPacket(**base)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "unknown"),
        (b"\x00\x01\x00\x00", "stun"),  # binding request
        (b"\x01\x01", "stun"),  # binding success
        (b"\x03", "stun"),
        (b"\x04", "unknown"),
        (b"\x13", "unknown"),
        (b"\x14\xfe\xfd", "dtls"),  # change cipher spec
        (b"\x16\xfe\xfd", "dtls"),  # handshake
        (b"\x3f", "dtls"),
        (b"\x40", "unknown"),
        (b"\x7f", "unknown"),
        (b"\x80", "unknown"),
        (PCMU, "rtp"),
        (b"\x80\x08", "rtp"),
        (b"\x80\xe5", "rtp"),  # marker + PT 101
        (b"\x80\xc8\x00\x06", "rtcp"),  # SR
        (b"\x81\xc9\x00\x07", "rtcp"),  # RR
        (b"\x81\xca", "rtcp"),  # SDES
        (b"\x81\xcb", "rtcp"),  # BYE
        (b"\x80\xcc", "rtcp"),  # APP
        (b"\x80\xc7", "rtp"),
        (b"\x80\xcd", "rtp"),
        (b"\xbf\xc8", "rtcp"),
        (b"\xc0\xc8", "unknown"),
        (b"\xff", "unknown"),
    ],
)
def test_classify(data: bytes, kind: str) -> None:
    assert classify(data) == kind
