"""SDP (RFC 8866) model and the RFC 3264 answer for a G.711 phone call.

Frozen value types: ``SessionDescription.parse(text)`` and ``str(sdp)``
round-trip every line we understand and preserve the rest (unknown
attributes, ``i=``/``b=``/``k=``... lines, ``a=crypto``) in order.
Malformed input raises :class:`SdpError` naming the 1-based line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from palaver.errors import MediaError
from palaver.rtp.srtp import CryptoAttribute, SrtpError, SrtpParams, generate_key

__all__ = [
    "Attribute",
    "Chosen",
    "Connection",
    "Direction",
    "MediaDescription",
    "NoAcceptableMedia",
    "Origin",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "Timing",
    "answer",
]

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
_DIRECTIONS: tuple[Direction, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")
_MIRROR: dict[Direction, Direction] = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
_STATIC: dict[int, tuple[str, int]] = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
_SUPPORTED = ("PCMU", "PCMA")
_RTP_PROTOS = ("RTP/AVP", "RTP/AVPF")
_SRTP_PROTOS = ("RTP/SAVP", "RTP/SAVPF")
# Session-level line types we keep verbatim, in the order RFC 8866 §5 emits them.
_SESSION_EXTRA_BEFORE_C = "iuep"
_SESSION_EXTRA_AFTER_C = "b"
_SESSION_EXTRA_AFTER_T = "rzk"
_MEDIA_EXTRA = "ibk"
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")


class SdpError(MediaError, ValueError):
    """Malformed SDP; ``line`` is the 1-based line number (0 when not tied to one)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}" if line else message)


class NoAcceptableMedia(SdpError):
    """The offer has no audio stream we can take: answer 488 Not Acceptable Here."""


@dataclass(frozen=True, slots=True)
class Origin:
    username: str
    session_id: str
    session_version: str
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @property
    def is_hold(self) -> bool:
        """RFC 2543-style hold: an unspecified address (RFC 3264 §8.4)."""
        return self.address in ("0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class Timing:
    start: int = 0
    stop: int = 0

    def __str__(self) -> str:
        return f"{self.start} {self.stop}"


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class RtpMap:
    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        tail = f"/{self.channels}" if self.channels is not None else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        m = re.fullmatch(r"(\d{1,3}) +([^/ ]+)/(\d+)(?:/(\d+))?", value.strip())
        if m is None:
            raise ValueError(f"malformed rtpmap {value!r}")
        pt = int(m.group(1))
        if pt > 127:
            raise ValueError(f"rtpmap payload type {pt} out of range 0-127")
        return cls(pt, m.group(2), int(m.group(3)), int(m.group(4)) if m.group(4) else None)


def _attrs_named(attributes: tuple[Attribute, ...], name: str) -> list[str]:
    return [a.value or "" for a in attributes if a.name == name]


def _direction_of(attributes: tuple[Attribute, ...]) -> Direction | None:
    found: Direction | None = None
    for a in attributes:
        for d in _DIRECTIONS:
            if a.name == d and a.value is None:
                found = d
    return found


@dataclass(frozen=True, slots=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: tuple[Attribute, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    """Verbatim ``i=``, ``b=``, ``k=`` lines as ``(type, value)``."""

    def __str__(self) -> str:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        lines = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"]
        lines += [f"{t}={v}" for t, v in self.extra if t == "i"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"{t}={v}" for t, v in self.extra if t in "bk"]
        lines += [f"a={a}" for a in self.attributes]
        return "".join(line + "\r\n" for line in lines)

    @property
    def payload_types(self) -> tuple[int, ...]:
        return tuple(int(f) for f in self.formats if f.isdigit())

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> mapping, with the static PCMU/PCMA entries filled in.

        An unreadable rtpmap (RFC 4475's valid ``esc01`` carries ``a=rtpmap:31 LPC``, with no
        clock rate) is ignored rather than refusing the whole offer: that payload type is
        simply unusable."""
        out = {pt: RtpMap(pt, *_STATIC[pt]) for pt in self.payload_types if pt in _STATIC}
        for v in _attrs_named(self.attributes, "rtpmap"):
            try:
                rm = RtpMap.parse(v)
            except ValueError:
                continue
            out[rm.payload_type] = rm
        return out

    @property
    def fmtp(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for v in _attrs_named(self.attributes, "fmtp"):
            pt, _, params = v.partition(" ")
            if pt.isdigit():
                out[int(pt)] = params.strip()
        return out

    @property
    def ptime(self) -> int | None:
        values = _attrs_named(self.attributes, "ptime")
        return int(float(values[-1])) if values else None

    @property
    def direction(self) -> Direction | None:
        """The media-level direction attribute, ``None`` when absent."""
        return _direction_of(self.attributes)

    @property
    def rtcp(self) -> tuple[int, Connection | None] | None:
        """``a=rtcp`` (RFC 3605): port and optional address."""
        values = _attrs_named(self.attributes, "rtcp")
        if not values:
            return None
        parts = values[-1].split()
        conn = Connection(parts[3], parts[1], parts[2]) if len(parts) >= 4 else None
        return int(parts[0]), conn

    @property
    def crypto(self) -> tuple[str, ...]:
        """``a=crypto`` values (RFC 4568), kept verbatim."""
        return tuple(_attrs_named(self.attributes, "crypto"))


@dataclass(frozen=True, slots=True)
class SessionDescription:
    origin: Origin
    name: str = "-"
    connection: Connection | None = None
    timing: tuple[Timing, ...] = (Timing(),)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    """Verbatim session-level ``i u e p b r z k`` lines as ``(type, value)``."""
    version: int = 0

    def __str__(self) -> str:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.name}"]
        lines += [f"{t}={v}" for t, v in self.extra if t in _SESSION_EXTRA_BEFORE_C]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"{t}={v}" for t, v in self.extra if t in _SESSION_EXTRA_AFTER_C]
        lines += [f"t={t}" for t in self.timing]
        lines += [f"{t}={v}" for t, v in self.extra if t in _SESSION_EXTRA_AFTER_T]
        lines += [f"a={a}" for a in self.attributes]
        return "".join(line + "\r\n" for line in lines) + "".join(str(m) for m in self.media)

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")

    @property
    def direction(self) -> Direction | None:
        return _direction_of(self.attributes)

    def direction_of(self, media: MediaDescription) -> Direction:
        """Effective direction: media level, else session level, else sendrecv."""
        return media.direction or self.direction or "sendrecv"

    def connection_of(self, media: MediaDescription) -> Connection | None:
        return media.connection or self.connection

    @classmethod
    def parse(cls, data: str | bytes) -> SessionDescription:
        return _Parser().parse(data)


@dataclass(slots=True)
class _MediaBuilder:
    line: int
    media: str
    port: int
    port_count: int | None
    proto: str
    formats: tuple[str, ...]
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)

    def build(self) -> MediaDescription:
        return MediaDescription(
            media=self.media,
            port=self.port,
            port_count=self.port_count,
            proto=self.proto,
            formats=self.formats,
            connection=self.connection,
            attributes=tuple(self.attributes),
            extra=tuple(self.extra),
        )


class _Parser:
    def parse(self, data: str | bytes) -> SessionDescription:
        if isinstance(data, bytes):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SdpError(0, f"SDP is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        else:
            text = data
        lines = text.split("\n")
        while lines and lines[-1].strip() == "":
            lines.pop()
        if not lines:
            raise SdpError(0, "empty SDP")
        version: int | None = None
        origin: Origin | None = None
        name: str | None = None
        connection: Connection | None = None
        timing: list[Timing] = []
        attributes: list[Attribute] = []
        extra: list[tuple[str, str]] = []
        media: list[_MediaBuilder] = []
        for n, raw in enumerate(lines, 1):
            line = raw[:-1] if raw.endswith("\r") else raw
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise SdpError(n, f"expected '<type>=<value>', got {line!r}")
            kind, value = line[0], line[2:]
            if n == 1:
                if kind != "v":
                    raise SdpError(1, f"first line must be 'v=0', got {line!r}")
                if value != "0":
                    raise SdpError(1, f"unsupported SDP version {value!r}")
                version = 0
                continue
            if kind == "v":
                raise SdpError(n, "repeated 'v=' line")
            current = media[-1] if media else None
            if kind == "m":
                media.append(self._media(n, value))
            elif kind == "a":
                attr = self._attribute(n, value)
                (current.attributes if current else attributes).append(attr)
            elif kind == "c":
                conn = self._connection(n, value)
                if current is None:
                    connection = conn
                else:
                    current.connection = conn
            elif current is not None:
                if kind not in _MEDIA_EXTRA:
                    raise SdpError(n, f"'{kind}=' line not allowed in a media section")
                current.extra.append((kind, value))
            elif kind == "o":
                origin = self._origin(n, value)
            elif kind == "s":
                name = value
            elif kind == "t":
                timing.append(self._timing(n, value))
            elif kind in _SESSION_EXTRA_BEFORE_C + _SESSION_EXTRA_AFTER_C + _SESSION_EXTRA_AFTER_T:
                extra.append((kind, value))
            else:
                raise SdpError(n, f"unknown line type '{kind}='")
        if origin is None:
            raise SdpError(0, "missing 'o=' line")
        if name is None:
            raise SdpError(0, "missing 's=' line")
        if not timing:
            raise SdpError(0, "missing 't=' line")
        for m in media:
            if m.connection is None and connection is None and m.port != 0:
                raise SdpError(m.line, "media section without 'c=' and no session-level 'c='")
        assert version is not None
        return SessionDescription(
            version=version,
            origin=origin,
            name=name,
            connection=connection,
            timing=tuple(timing),
            attributes=tuple(attributes),
            media=tuple(m.build() for m in media),
            extra=tuple(extra),
        )

    @staticmethod
    def _origin(n: int, value: str) -> Origin:
        parts = value.split(" ")
        if len(parts) != 6 or not all(parts):
            raise SdpError(n, f"'o=' needs 6 space-separated fields, got {value!r}")
        user, sid, sver, nettype, addrtype, address = parts
        if not sid.isdigit() or not sver.isdigit():
            raise SdpError(n, f"'o=' session id and version must be digits, got {sid!r} {sver!r}")
        return Origin(user, sid, sver, address, nettype, addrtype)

    @staticmethod
    def _connection(n: int, value: str) -> Connection:
        parts = value.split(" ")
        if len(parts) != 3 or not all(parts):
            raise SdpError(n, f"'c=' needs 3 space-separated fields, got {value!r}")
        return Connection(parts[2], parts[0], parts[1])

    @staticmethod
    def _timing(n: int, value: str) -> Timing:
        m = re.fullmatch(r"(\d+) (\d+)", value)
        if m is None:
            raise SdpError(n, f"'t=' needs '<start> <stop>', got {value!r}")
        return Timing(int(m.group(1)), int(m.group(2)))

    @staticmethod
    def _media(n: int, value: str) -> _MediaBuilder:
        parts = value.split(" ")
        if len(parts) < 4 or not all(parts):
            raise SdpError(n, f"'m=' needs '<media> <port> <proto> <fmt> ...', got {value!r}")
        kind, port_s, proto, *formats = parts
        pm = re.fullmatch(r"(\d{1,5})(?:/(\d+))?", port_s)
        if pm is None or int(pm.group(1)) > 65535:
            raise SdpError(n, f"'m=' port {port_s!r} is not a port number")
        if proto in _RTP_PROTOS or proto.startswith("RTP/"):
            for f in formats:
                if not f.isdigit() or int(f) > 127:
                    raise SdpError(n, f"'m=' RTP format {f!r} is not a payload type 0-127")
        return _MediaBuilder(
            line=n,
            media=kind,
            port=int(pm.group(1)),
            port_count=int(pm.group(2)) if pm.group(2) else None,
            proto=proto,
            formats=tuple(formats),
        )

    @staticmethod
    def _attribute(n: int, value: str) -> Attribute:
        name, colon, rest = value.partition(":")
        if not _TOKEN.fullmatch(name):
            raise SdpError(n, f"malformed attribute name {name!r}")
        attr = Attribute(name, rest if colon else None)
        if name == "fmtp":
            pt = rest.partition(" ")[0]
            if not pt.isdigit():
                raise SdpError(n, f"malformed fmtp {rest!r}")
        elif name == "ptime" and not re.fullmatch(r"\d+(?:\.\d+)?", rest.strip()):
            raise SdpError(n, f"malformed ptime {rest!r}")
        elif name == "rtcp" and not re.fullmatch(r"\d{1,5}(?: \S+ \S+ \S+)?", rest.strip()):
            raise SdpError(n, f"malformed rtcp {rest!r}")
        return attr


@dataclass(frozen=True, slots=True)
class Chosen:
    """What the answer settled for the one audio stream we accepted."""

    media_index: int
    payload_type: int
    encoding: str
    clock_rate: int
    telephone_event: int | None
    remote_address: str
    remote_port: int
    remote_rtcp_port: int
    direction: Direction
    """Our direction in the answer."""
    ptime: int | None
    """The offerer's requested packetisation time (ms), if any."""
    srtp: SrtpParams | None = None
    """SDES-SRTP keys when the stream is RTP/SAVP: the offer's key decrypts what we receive,
    the key in our answer encrypts what we send."""


def _reject(m: MediaDescription) -> MediaDescription:
    return MediaDescription(media=m.media, port=0, proto=m.proto, formats=m.formats[:1] or ("0",))


def _pick(m: MediaDescription) -> tuple[int, str, int | None] | None:
    maps = m.rtpmaps
    codec: tuple[int, str] | None = None
    for pt in m.payload_types:
        rm = maps.get(pt)
        if rm and rm.encoding.upper() in _SUPPORTED and rm.clock_rate == 8000 and rm.channels in (None, 1):
            codec = (pt, rm.encoding.upper())
            break
    if codec is None:
        return None
    te = next(
        (
            pt
            for pt in m.payload_types
            if (rm := maps.get(pt)) and rm.encoding.lower() == "telephone-event" and rm.clock_rate == 8000
        ),
        None,
    )
    return codec[0], codec[1], te


def _offered_crypto(m: MediaDescription) -> CryptoAttribute | None:
    """The first ``a=crypto`` line we can use (the offerer lists them in preference order)."""
    for value in m.crypto:
        try:
            crypto = CryptoAttribute.parse(value)
        except SrtpError:
            continue
        if crypto.usable:
            return crypto
    return None


def answer(
    offer: SessionDescription,
    *,
    local_ip: str,
    local_port: int,
    session_id: int,
    session_version: int | None = None,
    srtp_key: bytes | None = None,
) -> tuple[SessionDescription, Chosen]:
    """RFC 3264 answer accepting the first usable audio stream with PCMU or PCMA.

    The codec is the first of the offer's formats that is PCMU/8000 or
    PCMA/8000; the offer's telephone-event/8000 payload type is kept; the
    direction mirrors the offer's.  An RTP/SAVP stream is usable when one of its
    ``a=crypto`` lines (RFC 4568) has a suite we implement: the answer carries
    our line with the same tag and suite and our own key (``srtp_key``, fresh
    from the CSPRNG unless given).  Every other m-line is rejected with port
    0.  Raises :class:`NoAcceptableMedia` when no audio stream is usable.
    """
    addrtype = "IP6" if ":" in local_ip else "IP4"
    answered: list[MediaDescription] = []
    chosen: Chosen | None = None
    for i, m in enumerate(offer.media):
        secure = m.proto in _SRTP_PROTOS
        usable = m.media == "audio" and (m.proto in _RTP_PROTOS or secure) and m.port
        picked = _pick(m) if usable else None
        crypto = _offered_crypto(m) if secure and picked is not None else None
        conn = offer.connection_of(m)
        if chosen is not None or picked is None or conn is None or (secure and crypto is None):
            answered.append(_reject(m))
            continue
        pt, encoding, te = picked
        offered = offer.direction_of(m)
        if conn.is_hold and offered == "sendrecv":
            offered = "sendonly"
        ours = _MIRROR[offered]
        attrs = [Attribute("rtpmap", str(RtpMap(pt, encoding, 8000)))]
        formats = [str(pt)]
        if te is not None:
            formats.append(str(te))
            attrs.append(Attribute("rtpmap", str(RtpMap(te, "telephone-event", 8000))))
            attrs.append(Attribute("fmtp", f"{te} {m.fmtp.get(te) or '0-15'}"))
        srtp: SrtpParams | None = None
        if crypto is not None:
            key = srtp_key if srtp_key is not None else generate_key()
            attrs.append(Attribute("crypto", str(CryptoAttribute(crypto.tag, crypto.suite, key))))
            srtp = SrtpParams(
                crypto.suite,
                inbound_key=crypto.key,
                outbound_key=key,
                inbound_mki_length=crypto.mki[1] if crypto.mki else 0,
            )
        attrs += [Attribute("ptime", "20"), Attribute(ours)]
        answered.append(
            MediaDescription(
                media="audio",
                port=local_port,
                proto=m.proto,
                formats=tuple(formats),
                attributes=tuple(attrs),
            )
        )
        rtcp = m.rtcp
        chosen = Chosen(
            media_index=i,
            payload_type=pt,
            encoding=encoding,
            clock_rate=8000,
            telephone_event=te,
            remote_address=conn.address,
            remote_port=m.port,
            remote_rtcp_port=rtcp[0] if rtcp else m.port + 1,
            direction=ours,
            ptime=m.ptime,
            srtp=srtp,
        )
    if chosen is None:
        raise NoAcceptableMedia(0, "no audio stream offers PCMU/8000 or PCMA/8000 over RTP/AVP")
    version = session_id if session_version is None else session_version
    sdp = SessionDescription(
        origin=Origin("palaver", str(session_id), str(version), local_ip, "IN", addrtype),
        name="palaver",
        connection=Connection(local_ip, "IN", addrtype),
        timing=offer.timing,
        media=tuple(answered),
    )
    return sdp, chosen
