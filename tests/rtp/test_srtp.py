from __future__ import annotations

import base64

import pytest

from palaver.rtp.packet import RtpPacket
from palaver.rtp.srtp import CryptoAttribute, SrtpContext, SrtpError, SrtpParams, generate_key

KEY_B64 = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
KEY = base64.b64decode(KEY_B64)


def rtp(seq: int, payload: bytes = b"\x01" * 160) -> bytes:
    return bytes(RtpPacket(0, seq, seq * 160, 0xCAFE, payload))


RTCP_RR = bytes.fromhex("81c90007 0000cafe 00001234 00000000 00000001 00000000 00000000 00000000")


def test_parse_rfc4568_example() -> None:
    c = CryptoAttribute.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|1:4")
    assert c == CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", KEY, "2^20", (1, 4))
    assert str(c) == f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|1:4"
    assert c.usable


@pytest.mark.parametrize(
    ("value", "lifetime", "mki", "params"),
    [
        (f"7 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}", None, None, ()),
        (f"7 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}|1048576", "1048576", None, ()),
        (f"7 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}|3:2", None, (3, 2), ()),
        (f"7 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64} KDR=1 WSH=64", None, None, ("KDR=1", "WSH=64")),
    ],
)
def test_parse_variants_round_trip(
    value: str, lifetime: str | None, mki: tuple[int, int] | None, params: tuple[str, ...]
) -> None:
    c = CryptoAttribute.parse(value)
    assert (c.tag, c.key, c.lifetime, c.mki, c.session_params) == (7, KEY, lifetime, mki, params)
    assert str(c) == value
    assert c.usable == (not params)


def test_unpadded_base64_accepted() -> None:
    # Some phones drop the '=' padding; 30 bytes need none, shorter test keys do.
    assert CryptoAttribute.parse("1 X inline:c2hvcnQ").key == b"short"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("AES_CM_128_HMAC_SHA1_80 inline:abc", "malformed crypto attribute"),
        ("1 AES_CM_128_HMAC_SHA1_80", "malformed crypto attribute"),
        (f"1 AES_CM_128_HMAC_SHA1_80 uri:{KEY_B64}", "key method 'uri'"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64};inline:{KEY_B64}", "more than one key"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:not*base64", "is not base64"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|1:4|2^20", "malformed key parameter '2^20'"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|1:0", "MKI length 0 out of range"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|x", "malformed key parameter 'x'"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|1|2|3", "malformed key parameters"),
    ],
)
def test_parse_errors(value: str, message: str) -> None:
    with pytest.raises(SrtpError, match=message.replace("^", r"\^").replace("(", r"\(")):
        CryptoAttribute.parse(value)


def test_unusable_lines() -> None:
    assert not CryptoAttribute.parse(f"1 AES_256_CM_HMAC_SHA1_80 inline:{KEY_B64}").usable
    assert not CryptoAttribute.parse("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=").usable


def test_params_validation_and_repr() -> None:
    with pytest.raises(SrtpError, match="unsupported SRTP suite"):
        SrtpParams("NULL", KEY, KEY)
    with pytest.raises(SrtpError, match="30 bytes"):
        SrtpParams("AES_CM_128_HMAC_SHA1_80", KEY[:16], KEY)
    p = SrtpParams("AES_CM_128_HMAC_SHA1_80", KEY, generate_key())
    assert KEY.hex() not in repr(p) and KEY_B64 not in repr(p)
    assert p.reversed().inbound_key == p.outbound_key


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_round_trip_rtp_and_rtcp(suite: str) -> None:
    ours = SrtpContext(SrtpParams(suite, generate_key(), generate_key()))
    theirs = SrtpContext(ours.params.reversed())
    for seq in range(3):
        wire = ours.protect(rtp(seq))
        assert wire is not None and wire != rtp(seq)
        assert len(wire) == len(rtp(seq)) + (10 if suite.endswith("80") else 4)
        assert theirs.unprotect(wire) == rtp(seq)
    wire = theirs.protect_rtcp(RTCP_RR)
    assert wire is not None
    assert ours.unprotect_rtcp(wire) == RTCP_RR
    assert (ours.stats.protected, ours.stats.unprotected) == (3, 1)


def test_auth_failures_and_replays_are_counted_not_raised() -> None:
    ours = SrtpContext(SrtpParams("AES_CM_128_HMAC_SHA1_80", generate_key(), generate_key()))
    theirs = SrtpContext(ours.params.reversed())
    wire = theirs.protect(rtp(1))
    assert wire is not None
    tampered = wire[:-1] + bytes([wire[-1] ^ 1])
    assert ours.unprotect(tampered) is None
    assert ours.unprotect(rtp(1)) is None  # plain RTP on an SRTP stream
    assert ours.unprotect(wire) == rtp(1)
    assert ours.unprotect(wire) is None  # a replay
    assert ours.unprotect_rtcp(RTCP_RR) is None
    assert ours.stats.auth_failures == 4
    assert ours.unprotect(b"\x80" * 5000) is None  # longer than libsrtp's buffer
    assert ours.stats.errors == 1


def test_inbound_mki_is_stripped() -> None:
    keys = (generate_key(), generate_key())
    theirs = SrtpContext(SrtpParams("AES_CM_128_HMAC_SHA1_80", keys[1], keys[0]))
    ours = SrtpContext(SrtpParams("AES_CM_128_HMAC_SHA1_80", keys[0], keys[1], inbound_mki_length=4))
    mki = b"\x00\x00\x00\x01"
    wire = theirs.protect(rtp(5))
    assert wire is not None
    with_mki = wire[:-10] + mki + wire[-10:]
    assert ours.unprotect(with_mki) == rtp(5)
    wire = theirs.protect_rtcp(RTCP_RR)
    assert wire is not None
    assert ours.unprotect_rtcp(wire[:-10] + mki + wire[-10:]) == RTCP_RR
    assert ours.unprotect(b"\x80\x00" + b"\x00" * 10) is None
    assert ours.stats.errors == 1


def test_rekeyed_keeps_unchanged_directions() -> None:
    ours_key, their_key, new_key = generate_key(), generate_key(), generate_key()
    ctx = SrtpContext(SrtpParams("AES_CM_128_HMAC_SHA1_80", their_key, ours_key))
    peer = SrtpContext(ctx.params.reversed())
    for seq in (65534, 65535, 0):  # across a sequence wrap: the sender's ROC is now 1
        wire = ctx.protect(rtp(seq))
        assert wire is not None and peer.unprotect(wire) == rtp(seq)
    # The peer changes its key; ours stays: our outbound session (and ROC) must survive.
    again = ctx.rekeyed(SrtpParams("AES_CM_128_HMAC_SHA1_80", new_key, ours_key))
    wire = again.protect(rtp(1))
    assert wire is not None
    assert peer.unprotect(wire) == rtp(1)  # the peer still expects ROC 1
    new_peer = SrtpContext(SrtpParams("AES_CM_128_HMAC_SHA1_80", ours_key, new_key))
    wire = new_peer.protect(rtp(7))
    assert wire is not None and again.unprotect(wire) == rtp(7)
    assert again.stats is ctx.stats
