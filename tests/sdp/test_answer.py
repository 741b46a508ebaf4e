from __future__ import annotations

import pytest

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


def test_srtp_rejected_plain_rtp_accepted() -> None:
    sdp, chosen = _answer(SRTP_THEN_RTP)
    assert chosen.media_index == 1
    assert chosen.remote_port == 40002
    assert chosen.direction == "sendonly"
    savp, avp = sdp.media
    assert (savp.port, savp.proto, savp.attributes) == (0, "RTP/SAVP", ())
    assert avp.port == 30000
    assert avp.fmtp == {101: "0-15"}


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
