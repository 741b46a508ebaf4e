from __future__ import annotations

import pytest

from palaver.sdp import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
)
from tests.sdp.fixtures import ALL, BARESIP, FREESWITCH, SIPP, SRTP_THEN_RTP, crlf


@pytest.mark.parametrize("name", sorted(ALL))
def test_round_trip_exact(name: str) -> None:
    text = ALL[name]
    sdp = SessionDescription.parse(text)
    assert str(sdp) == text
    assert SessionDescription.parse(bytes(sdp)) == sdp


def test_parse_lf_only_and_trailing_blank_lines() -> None:
    assert SessionDescription.parse(SIPP.replace("\r\n", "\n") + "\n\n") == SessionDescription.parse(SIPP)


def test_parse_sipp() -> None:
    sdp = SessionDescription.parse(SIPP)
    assert sdp.origin == Origin("user1", "53655765", "2353687637", "127.0.0.1")
    assert sdp.name == "-"
    assert sdp.connection == Connection("127.0.0.1")
    assert sdp.timing == (Timing(0, 0),)
    (m,) = sdp.media
    assert (m.media, m.port, m.proto, m.formats) == ("audio", 6000, "RTP/AVP", ("0",))
    assert m.rtpmaps == {0: RtpMap(0, "PCMU", 8000)}
    assert sdp.direction_of(m) == "sendrecv"


def test_parse_freeswitch_details() -> None:
    sdp = SessionDescription.parse(FREESWITCH)
    (m,) = sdp.media
    assert m.payload_types == (102, 9, 0, 8, 104, 101)
    assert m.rtpmaps[102] == RtpMap(102, "opus", 48000, 2)
    assert m.fmtp[101] == "0-16"
    assert m.fmtp[102].startswith("useinbandfec=1;")
    assert m.ptime == 20
    assert m.direction == "sendrecv"
    assert m.rtcp == (24609, Connection("10.0.0.5"))


def test_parse_baresip_preserves_unknown() -> None:
    sdp = SessionDescription.parse(BARESIP)
    assert sdp.attributes == (Attribute("tool", "baresip 3.10.1"),)
    audio, video = sdp.media
    assert audio.extra == (("b", "AS:128"),)
    assert Attribute("rtcp-rsize") in audio.attributes
    assert Attribute("ssrc", "1234567 cname:sip:alice@example.com") in audio.attributes
    assert video.media == "video"


def test_static_payload_without_rtpmap() -> None:
    sdp = SessionDescription.parse(
        crlf("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5 RTP/AVP 8 0")
    )
    assert sdp.media[0].rtpmaps == {8: RtpMap(8, "PCMA", 8000), 0: RtpMap(0, "PCMU", 8000)}


def test_crypto_kept() -> None:
    sdp = SessionDescription.parse(SRTP_THEN_RTP)
    assert sdp.media[0].crypto == (
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
    )
    assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80" in str(sdp)


def test_session_level_direction_and_extra_lines() -> None:
    text = crlf(
        "v=0\no=- 1 2 IN IP6 ::1\ns=call\ni=info\nu=http://x\ne=a@b\np=+1 555\nc=IN IP6 ::1\nb=CT:64\n"
        "t=0 0\nr=7d 1h 0 25h\nz=0 -1h\nk=prompt\na=recvonly\nm=audio 7 RTP/AVP 0\ni=voice\nc=IN IP6 ::2\n"
        "b=AS:64\nk=prompt\na=sendonly"
    )
    sdp = SessionDescription.parse(text)
    assert str(sdp) == text
    assert sdp.direction == "recvonly"
    assert sdp.direction_of(sdp.media[0]) == "sendonly"
    assert sdp.connection_of(sdp.media[0]) == Connection("::2", "IN", "IP6")


BASE = ["v=0", "o=- 1 1 IN IP4 1.2.3.4", "s=-", "c=IN IP4 1.2.3.4", "t=0 0", "m=audio 5 RTP/AVP 0"]


def _with(index: int, line: str | None) -> str:
    lines = list(BASE)
    if line is None:
        del lines[index]
    else:
        lines[index] = line
    return crlf("\n".join(lines))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty SDP"),
        ("\r\n\r\n", "empty SDP"),
        (_with(0, "v=1"), "line 1: unsupported SDP version '1'"),
        (
            _with(0, "o=- 1 1 IN IP4 1.2.3.4"),
            "line 1: first line must be 'v=0', got 'o=- 1 1 IN IP4 1.2.3.4'",
        ),
        (
            _with(1, "o=- 1 IN IP4 1.2.3.4"),
            "line 2: 'o=' needs 6 space-separated fields, got '- 1 IN IP4 1.2.3.4'",
        ),
        (_with(1, "o=- x 1 IN IP4 h"), "line 2: 'o=' session id and version must be digits, got 'x' '1'"),
        (_with(1, None), "missing 'o=' line"),
        (_with(2, None), "missing 's=' line"),
        (_with(4, None), "missing 't=' line"),
        (_with(3, "c=IN IP4"), "line 4: 'c=' needs 3 space-separated fields, got 'IN IP4'"),
        (_with(3, None), "line 5: media section without 'c=' and no session-level 'c='"),
        (_with(4, "t=0"), "line 5: 't=' needs '<start> <stop>', got '0'"),
        (
            _with(5, "m=audio 5 RTP/AVP"),
            "line 6: 'm=' needs '<media> <port> <proto> <fmt> ...', got 'audio 5 RTP/AVP'",
        ),
        (_with(5, "m=audio 70000 RTP/AVP 0"), "line 6: 'm=' port '70000' is not a port number"),
        (_with(5, "m=audio x RTP/AVP 0"), "line 6: 'm=' port 'x' is not a port number"),
        (_with(5, "m=audio 5 RTP/AVP 0 128"), "line 6: 'm=' RTP format '128' is not a payload type 0-127"),
        (_with(2, "garbage"), "line 3: expected '<type>=<value>', got 'garbage'"),
        (_with(2, "X=1"), "line 3: expected '<type>=<value>', got 'X=1'"),
        (_with(2, "v=0"), "line 3: repeated 'v=' line"),
        (_with(2, "y=1"), "line 3: unknown line type 'y='"),
        (crlf("\n".join([*BASE, "s=-"])), "line 7: 's=' line not allowed in a media section"),
        (crlf("\n".join([*BASE, "a=fmtp:x 0-15"])), "line 7: malformed fmtp 'x 0-15'"),
        (crlf("\n".join([*BASE, "a=ptime:twenty"])), "line 7: malformed ptime 'twenty'"),
        (crlf("\n".join([*BASE, "a=rtcp:x"])), "line 7: malformed rtcp 'x'"),
        (crlf("\n".join([*BASE, "a=bad name"])), "line 7: malformed attribute name 'bad name'"),
        (b"v=0\r\n\xff", "SDP is not UTF-8 (invalid start byte at byte 5)"),
    ],
)
def test_errors(text: str | bytes, message: str) -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(text)
    assert str(info.value) == message


def test_error_line_attribute() -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(_with(3, "c=IN IP4"))
    assert info.value.line == 4
    assert info.value.message == "'c=' needs 3 space-separated fields, got 'IN IP4'"


def test_build_and_serialise() -> None:
    sdp = SessionDescription(
        origin=Origin("palaver", "1", "1", "10.0.0.1"),
        connection=Connection("10.0.0.1"),
        media=(
            MediaDescription(
                "audio", 4000, "RTP/AVP", ("0",), attributes=(Attribute("rtpmap", "0 PCMU/8000"),)
            ),
        ),
    )
    assert str(sdp) == crlf(
        "v=0\no=palaver 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
        "a=rtpmap:0 PCMU/8000"
    )


@pytest.mark.parametrize("line", ["a=rtpmap:31 LPC", "a=rtpmap:0 PCMU", "a=rtpmap:200 X/8000"])
def test_an_unreadable_rtpmap_is_ignored_not_fatal(line: str) -> None:
    """RFC 4475's valid esc01/longreq INVITEs carry ``a=rtpmap:31 LPC``: the offer still parses;
    the unreadable mapping is simply not used (PCMU keeps its static mapping)."""
    sdp = SessionDescription.parse(crlf("\n".join([*BASE, line])))
    maps = sdp.media[0].rtpmaps
    assert all(m.clock_rate > 0 for m in maps.values())
    assert 200 not in maps and 31 not in maps
