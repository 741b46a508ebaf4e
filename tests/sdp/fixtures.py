"""Realistic offers, written in the style each vendor emits (CRLF line ends)."""

from __future__ import annotations


def crlf(text: str) -> str:
    return "".join(line + "\r\n" for line in text.strip("\n").split("\n"))


# SIPp's built-in uac scenario.
SIPP = crlf("""
v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
""")

# Asterisk (chan_pjsip) with allow=alaw,ulaw,gsm and RFC 4733 DTMF.
ASTERISK = crlf("""
v=0
o=- 1719234567 1719234567 IN IP4 192.168.1.10
s=Asterisk
c=IN IP4 192.168.1.10
t=0 0
m=audio 14562 RTP/AVP 8 0 3 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:3 GSM/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
""")

# FreeSWITCH default codec list (OPUS,G722,PCMU,PCMA) with two telephone-events.
FREESWITCH = crlf("""
v=0
o=FreeSWITCH 1719220000 1719220001 IN IP4 10.0.0.5
s=FreeSWITCH
c=IN IP4 10.0.0.5
t=0 0
m=audio 24608 RTP/AVP 102 9 0 8 104 101
a=rtpmap:102 opus/48000/2
a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20; minptime=10
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:104 telephone-event/48000
a=fmtp:104 0-16
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
a=rtcp:24609 IN IP4 10.0.0.5
""")

# baresip 3.x with video enabled; PCMA preferred over PCMU here.
BARESIP = crlf("""
v=0
o=- 1253063227 2016934574 IN IP4 192.168.0.45
s=-
c=IN IP4 192.168.0.45
t=0 0
a=tool:baresip 3.10.1
m=audio 10130 RTP/AVP 96 9 8 0 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=ssrc:1234567 cname:sip:alice@example.com
a=rtcp-rsize
m=video 10132 RTP/AVP 97
b=AS:1000
a=rtpmap:97 H264/90000
a=fmtp:97 packetization-mode=0
a=sendrecv
""")

# Asterisk putting the call on hold.
ASTERISK_HOLD = ASTERISK.replace("a=sendrecv", "a=sendonly")

# SRTP (SDES) offer followed by a plain RTP fallback stream.
SRTP_THEN_RTP = crlf("""
v=0
o=- 3 4 IN IP4 203.0.113.7
s=-
c=IN IP4 203.0.113.7
t=0 0
m=audio 40000 RTP/SAVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4
m=audio 40002 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=recvonly
""")

ALL = {
    "sipp": SIPP,
    "asterisk": ASTERISK,
    "freeswitch": FREESWITCH,
    "baresip": BARESIP,
    "asterisk_hold": ASTERISK_HOLD,
    "srtp_then_rtp": SRTP_THEN_RTP,
}
