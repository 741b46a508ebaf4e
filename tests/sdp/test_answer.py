from __future__ import annotations

import base64

import pytest

from palaver.rtp.srtp import SrtpParams
from palaver.sdp import Chosen, Connection, NoAcceptableMedia, SessionDescription, answer
from tests.sdp.fixtures import (
    ASTERISK,
    ASTERISK_HOLD,
    BARESIP,
    FREESWITCH,
    SIPP,
    SRTP_THEN_RTP,
    crlf,
)


def _answer(text: str) -> tuple[SessionDescription, Chosen]:
    return answer(SessionDescription.parse(text), local_ip="192.0.2.1", local_port=30000, session_id=42)


def test_sipp_exact_answer() -> None:
    sdp, chosen = _answer(SIPP)
    assert str(sdp) == crlf(
        "v=0\no=palaver 42 42 IN IP4 192.0.2.1\ns=palaver\nc=IN IP4 192.0.2.1\nt=0 0\n"
        "m=audio 30000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=ptime:20\na=sendrecv"
    )
    assert chosen == Chosen(
        media_index=0,
        payload_type=0,
        encoding="PCMU",
        clock_rate=8000,
        telephone_event=None,
        remote_address="127.0.0.1",
        remote_port=6000,
        remote_rtcp_port=6001,
        direction="sendrecv",
        ptime=None,
    )
    assert SessionDescription.parse(str(sdp)) == sdp


def test_asterisk_prefers_offer_order_pcma() -> None:
    sdp, chosen = _answer(ASTERISK)
    assert (chosen.payload_type, chosen.encoding, chosen.telephone_event) == (8, "PCMA", 101)
    assert chosen.ptime == 20
    assert str(sdp.media[0]) == crlf(
        "m=audio 30000 RTP/AVP 8 101\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\n"
        "a=fmtp:101 0-16\na=ptime:20\na=sendrecv"
    )


def test_freeswitch_skips_opus_g722_and_wideband_events() -> None:
    _, chosen = _answer(FREESWITCH)
    assert (chosen.payload_type, chosen.encoding, chosen.telephone_event) == (0, "PCMU", 101)
    assert chosen.remote_rtcp_port == 24609
    assert (chosen.remote_address, chosen.remote_port) == ("10.0.0.5", 24608)


def test_baresip_video_rejected() -> None:
    sdp, chosen = _answer(BARESIP)
    assert (chosen.payload_type, chosen.telephone_event) == (8, 101)
    audio, video = sdp.media
    assert audio.port == 30000
    assert audio.fmtp == {101: "0-15"}
    assert str(video) == "m=video 0 RTP/AVP 97\r\n"
    assert len(sdp.media) == 2


def test_hold_mirrored() -> None:
    sdp, chosen = _answer(ASTERISK_HOLD)
    assert chosen.direction == "recvonly"
    assert sdp.media[0].direction == "recvonly"


@pytest.mark.parametrize(
    ("offered", "ours"),
    [("sendrecv", "sendrecv"), ("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive")],
)
def test_direction_mirror_session_level(offered: str, ours: str) -> None:
    text = SIPP.replace("t=0 0\r\n", f"t=0 0\r\na={offered}\r\n")
    sdp, chosen = _answer(text)
    assert chosen.direction == ours
    assert sdp.media[0].direction == ours


def test_old_style_hold_address() -> None:
    _, chosen = _answer(SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"))
    assert chosen.direction == "recvonly"


def test_srtp_without_usable_crypto_rejected_plain_rtp_accepted() -> None:
    sdp, chosen = _answer(SRTP_THEN_RTP.replace("AES_CM_128_HMAC_SHA1_80", "F8_128_HMAC_SHA1_80"))
    assert chosen.media_index == 1
    assert chosen.remote_port == 40002
    assert chosen.direction == "sendonly"
    assert chosen.srtp is None
    savp, avp = sdp.media
    assert (savp.port, savp.proto, savp.attributes) == (0, "RTP/SAVP", ())
    assert avp.port == 30000
    assert avp.fmtp == {101: "0-15"}


OUR_KEY = bytes(range(30))
OUR_KEY_B64 = base64.b64encode(OUR_KEY).decode()
OFFER_KEY = base64.b64decode("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")


def _srtp_answer(text: str, key: bytes | None = OUR_KEY) -> tuple[SessionDescription, Chosen]:
    offer = SessionDescription.parse(text)
    return answer(offer, local_ip="192.0.2.1", local_port=30000, session_id=42, srtp_key=key)


def test_srtp_offer_accepted_with_our_crypto_line() -> None:
    sdp, chosen = _srtp_answer(SRTP_THEN_RTP)
    assert chosen.media_index == 0
    assert (chosen.payload_type, chosen.telephone_event, chosen.remote_port) == (0, 101, 40000)
    assert chosen.srtp == SrtpParams(
        "AES_CM_128_HMAC_SHA1_80", inbound_key=OFFER_KEY, outbound_key=OUR_KEY, inbound_mki_length=4
    )
    savp, avp = sdp.media
    assert str(savp) == crlf(
        "m=audio 30000 RTP/SAVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n"
        f"a=fmtp:101 0-15\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{OUR_KEY_B64}\na=ptime:20\na=sendrecv"
    )
    assert avp.port == 0
    assert SessionDescription.parse(str(sdp)) == sdp


def test_srtp_first_usable_crypto_line_wins() -> None:
    text = SRTP_THEN_RTP.replace(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
        "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:" + "A" * 62 + "\r\n"
        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\r\n"
        "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz "
        "UNENCRYPTED_SRTP\r\n"
        "a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
    )
    sdp, chosen = _srtp_answer(text)
    assert chosen.srtp is not None
    assert chosen.srtp.suite == "AES_CM_128_HMAC_SHA1_32"
    assert chosen.srtp.inbound_mki_length == 0
    assert sdp.media[0].crypto == (f"4 AES_CM_128_HMAC_SHA1_32 inline:{OUR_KEY_B64}",)


@pytest.mark.parametrize(
    "crypto",
    [
        "",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\r\n",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:not*base64\r\n",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 \r\n",
    ],
)
def test_srtp_without_usable_crypto_is_not_acceptable(crypto: str) -> None:
    text = (
        crlf("v=0\no=- 1 1 IN IP4 10.0.0.9\ns=-\nc=IN IP4 10.0.0.9\nt=0 0\nm=audio 5004 RTP/SAVP 8") + crypto
    )
    with pytest.raises(NoAcceptableMedia):
        _srtp_answer(text)


def test_srtp_key_is_fresh_per_answer() -> None:
    _, a = _srtp_answer(SRTP_THEN_RTP, key=None)
    _, b = _srtp_answer(SRTP_THEN_RTP, key=None)
    assert a.srtp is not None and b.srtp is not None
    assert len(a.srtp.outbound_key) == 30
    assert a.srtp.outbound_key != b.srtp.outbound_key
    assert "inline" not in repr(a.srtp) and a.srtp.outbound_key.hex() not in repr(a)


def test_plain_rtp_answer_has_no_crypto() -> None:
    sdp, chosen = _srtp_answer(ASTERISK)
    assert chosen.srtp is None
    assert sdp.media[0].crypto == ()


def test_second_audio_stream_rejected() -> None:
    text = SIPP + "m=audio 6002 RTP/AVP 8\r\n"
    sdp, chosen = _answer(text)
    assert chosen.media_index == 0
    assert [m.port for m in sdp.media] == [30000, 0]


def test_stereo_or_wrong_rate_pcmu_not_taken() -> None:
    text = SIPP.replace(
        "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000",
        "m=audio 6000 RTP/AVP 96 97\r\na=rtpmap:96 PCMU/16000\r\na=rtpmap:97 PCMA/8000/2",
    )
    with pytest.raises(NoAcceptableMedia) as info:
        _answer(text)
    assert str(info.value) == "no audio stream offers PCMU/8000 or PCMA/8000 over RTP/AVP"


def test_nothing_supported() -> None:
    with pytest.raises(NoAcceptableMedia):
        _answer(SIPP.replace("RTP/AVP 0\r\na=rtpmap:0 PCMU/8000", "RTP/AVP 9\r\na=rtpmap:9 G722/8000"))
    with pytest.raises(NoAcceptableMedia):
        _answer(SIPP.replace("m=audio 6000", "m=audio 0"))


def test_ipv6_local() -> None:
    sdp, _ = answer(
        SessionDescription.parse(SIPP), local_ip="2001:db8::1", local_port=4, session_id=1, session_version=2
    )
    assert sdp.connection == Connection("2001:db8::1", "IN", "IP6")
    assert str(sdp.origin) == "palaver 1 2 IN IP6 2001:db8::1"
