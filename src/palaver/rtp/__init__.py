"""RTP media plane, pure: packets (RFC 3550), RFC 4733 DTMF, jitter buffer."""

from __future__ import annotations

from palaver.rtp.packet import RtpError, RtpPacket, classify

__all__ = ["RtpError", "RtpPacket", "classify"]
