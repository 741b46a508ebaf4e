"""SDES-SRTP: RFC 4568 ``a=crypto`` lines and the packet contexts (RFC 3711, via pylibsrtp).

Keys travel in the SDP (so the signalling must be TLS for this to mean anything). Each side
encrypts with its *own* key: we decrypt with the key in the remote ``a=crypto`` line and
encrypt with the one we put in our answer. A master key identifier (MKI), which some peers
(Lync/Skype for Business) put on every packet, is not authenticated (RFC 3711 §3.1), so it is
removed before libsrtp sees an inbound packet; we never send one.

A packet that fails authentication or replay checks is a *counted drop*, never an exception
out of the receive path: forged or stale datagrams on a public port are routine.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field

import pylibsrtp

from palaver.errors import MediaError

__all__ = [
    "KEY_LENGTH",
    "SUITES",
    "CryptoAttribute",
    "SrtpContext",
    "SrtpError",
    "SrtpParams",
    "SrtpStats",
    "generate_key",
]

KEY_LENGTH = 30
"""Master key (16) plus master salt (14) for the AES_CM_128 suites."""

# Suite name -> (libsrtp profile, SRTP auth tag length, SRTCP auth tag length).
SUITES: dict[str, tuple[int, int, int]] = {
    "AES_CM_128_HMAC_SHA1_80": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 10, 10),
    "AES_CM_128_HMAC_SHA1_32": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 4, 10),
}

_CRYPTO = re.compile(r"(\d{1,9})[ \t]+(\S+)[ \t]+(\S+)((?:[ \t]+\S+)*)[ \t]*")
_LIFETIME = re.compile(r"\d+|2\^\d+")
_MKI = re.compile(r"(\d+):(\d+)")


class SrtpError(MediaError, ValueError):
    """An ``a=crypto`` value we cannot parse or use."""


def generate_key() -> bytes:
    """A fresh master key and salt from the OS CSPRNG."""
    return secrets.token_bytes(KEY_LENGTH)


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One ``a=crypto`` value: ``<tag> <suite> inline:<key||salt>[|lifetime][|MKI:length]``.

    Only the single ``inline`` key form is modelled (multiple keys per line are for MKI key
    switching, which no phone we know of uses). ``session_params`` are kept verbatim.
    """

    tag: int
    suite: str
    key: bytes
    lifetime: str | None = None
    mki: tuple[int, int] | None = None
    """(value, length in bytes) when the peer puts an MKI on its packets."""
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        m = _CRYPTO.fullmatch(value.strip())
        if m is None:
            raise SrtpError(f"malformed crypto attribute {value!r}")
        tag, suite, key_params, rest = m.groups()
        if ";" in key_params:
            raise SrtpError("more than one key in a crypto attribute is not supported")
        method, colon, info = key_params.partition(":")
        if not colon or method != "inline":
            raise SrtpError(f"key method {method!r} is not 'inline'")
        key_b64, *tail = info.split("|")
        if len(tail) > 2:
            raise SrtpError(f"malformed key parameters {info!r}")
        try:
            key = base64.b64decode(key_b64 + "=" * (-len(key_b64) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise SrtpError(f"key {key_b64!r} is not base64") from None
        lifetime: str | None = None
        mki: tuple[int, int] | None = None
        for part in tail:
            if (mm := _MKI.fullmatch(part)) is not None:
                if mki is not None:
                    raise SrtpError(f"two MKI fields in {info!r}")
                length = int(mm.group(2))
                if not 1 <= length <= 128:
                    raise SrtpError(f"MKI length {length} out of range 1-128")
                mki = (int(mm.group(1)), length)
            elif _LIFETIME.fullmatch(part) and lifetime is None and mki is None:
                lifetime = part
            else:
                raise SrtpError(f"malformed key parameter {part!r}")
        return cls(int(tag), suite, key, lifetime, mki, tuple(rest.split()))

    def __str__(self) -> str:
        tail = ""
        if self.lifetime is not None:
            tail += f"|{self.lifetime}"
        if self.mki is not None:
            tail += f"|{self.mki[0]}:{self.mki[1]}"
        params = "".join(f" {p}" for p in self.session_params)
        key = base64.b64encode(self.key).decode("ascii")
        return f"{self.tag} {self.suite} inline:{key}{tail}{params}"

    @property
    def usable(self) -> bool:
        """A suite we implement, a key of the right length, and no session parameters.

        RFC 4568 §6.3 lets us ignore a line whose parameters we do not understand; the ones
        defined (KDR, UNENCRYPTED_*, FEC_*, WSH) all change the packet processing, so we
        take none of them rather than mis-decrypt.
        """
        return self.suite in SUITES and len(self.key) == KEY_LENGTH and not self.session_params


@dataclass(frozen=True, slots=True)
class SrtpParams:
    """The negotiated SDES-SRTP parameters of one stream."""

    suite: str
    inbound_key: bytes
    """The peer's master key and salt: decrypts what we receive."""
    outbound_key: bytes
    """Ours (in our answer): encrypts what we send."""
    inbound_mki_length: int = 0
    """Bytes of MKI the peer appends to each packet (stripped before decryption)."""

    def __post_init__(self) -> None:
        if self.suite not in SUITES:
            raise SrtpError(f"unsupported SRTP suite {self.suite!r}")
        if len(self.inbound_key) != KEY_LENGTH or len(self.outbound_key) != KEY_LENGTH:
            raise SrtpError(f"SRTP keys must be {KEY_LENGTH} bytes")

    def __repr__(self) -> str:  # keys stay out of logs
        return f"SrtpParams(suite={self.suite!r}, inbound_mki_length={self.inbound_mki_length})"

    def reversed(self) -> SrtpParams:
        """The peer's view (for tests and loopback peers): keys swapped, no MKI."""
        return SrtpParams(self.suite, self.outbound_key, self.inbound_key)


@dataclass(slots=True)
class SrtpStats:
    protected: int = 0
    unprotected: int = 0
    auth_failures: int = 0
    """Inbound packets that failed authentication or the replay check (dropped)."""
    errors: int = 0
    """Other failures: truncated or oversized packets, send-side errors."""


@dataclass(slots=True)
class SrtpContext:
    """Inbound and outbound SRTP/SRTCP sessions for one RTP stream (any SSRC)."""

    params: SrtpParams
    stats: SrtpStats = field(default_factory=SrtpStats)
    _inbound: pylibsrtp.Session = field(init=False, repr=False)
    _outbound: pylibsrtp.Session = field(init=False, repr=False)
    _rtp_tag: int = field(init=False, repr=False)
    _rtcp_tag: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        profile, self._rtp_tag, self._rtcp_tag = SUITES[self.params.suite]
        self._inbound = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=self.params.inbound_key,
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                srtp_profile=profile,
            )
        )
        self._outbound = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=self.params.outbound_key,
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                srtp_profile=profile,
            )
        )

    def rekeyed(self, params: SrtpParams) -> SrtpContext:
        """The context for a re-negotiation (re-INVITE): a direction whose suite and key are
        unchanged keeps its libsrtp session, hence its rollover counter and replay window.
        A fresh session under an old key would restart at ROC 0 and, past the first sequence
        wrap, encrypt new packets with keystream already used."""
        new = SrtpContext(params)
        old = self.params
        if params.suite == old.suite:
            if params.outbound_key == old.outbound_key:
                new._outbound = self._outbound
            if params.inbound_key == old.inbound_key:
                new._inbound = self._inbound
        new.stats = self.stats
        return new

    def _strip_mki(self, data: bytes, tag: int) -> bytes | None:
        n = self.params.inbound_mki_length
        if not n:
            return data
        if len(data) < 12 + n + tag:
            return None
        return data[: len(data) - tag - n] + data[len(data) - tag :]

    def protect(self, rtp: bytes) -> bytes | None:
        """Encrypt and authenticate an RTP packet; ``None`` (counted) if libsrtp refuses."""
        try:
            out = self._outbound.protect(rtp)
        except (pylibsrtp.Error, ValueError):
            self.stats.errors += 1
            return None
        self.stats.protected += 1
        return out

    def protect_rtcp(self, rtcp: bytes) -> bytes | None:
        try:
            out = self._outbound.protect_rtcp(rtcp)
        except (pylibsrtp.Error, ValueError):
            self.stats.errors += 1
            return None
        self.stats.protected += 1
        return out

    def unprotect(self, srtp: bytes) -> bytes | None:
        """Authenticate and decrypt an SRTP packet; ``None`` (counted) when it does not verify."""
        return self._unprotect(srtp, self._rtp_tag, rtcp=False)

    def unprotect_rtcp(self, srtcp: bytes) -> bytes | None:
        return self._unprotect(srtcp, self._rtcp_tag, rtcp=True)

    def _unprotect(self, data: bytes, tag: int, *, rtcp: bool) -> bytes | None:
        stripped = self._strip_mki(bytes(data), tag)
        if stripped is None:
            self.stats.errors += 1
            return None
        try:
            out = self._inbound.unprotect_rtcp(stripped) if rtcp else self._inbound.unprotect(stripped)
        except pylibsrtp.Error:
            self.stats.auth_failures += 1
            return None
        except ValueError:
            self.stats.errors += 1
            return None
        self.stats.unprotected += 1
        return out
