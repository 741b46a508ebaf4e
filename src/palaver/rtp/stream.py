"""One G.711 RTP media stream, both directions, without sockets or clocks.

The transport (``transports/rtp.py``) feeds datagrams in with :meth:`MediaStream.datagram`,
calls :meth:`MediaStream.due_packets` on its 20 ms schedule and sends what comes back, then
:meth:`MediaStream.poll` for the receive side. Every method takes ``now`` (monotonic seconds).

Receive: classify (STUN/DTLS/garbage are counted and dropped: linphone sends STUN to the RTP
port), symmetric latching (the source of the first valid packet is where we send from then
on and the only source we accept; a forged packet before that would need the SRTP key or to
beat the real peer), payload-type filter (the codec and telephone-event; comfort noise only
proves liveness), SRTP, then a jitter buffer sized in *the peer's* packet duration. Its output
is cut into 20 ms frames however the peer packetises (SIPp's pcap sends 30 ms), lost packets
become silence, and once audio has flowed a starved buffer also yields silence frames so that
the consumer (VAD, STT) sees a steady 50 frames/s even from a peer that stops sending in
pauses. DTMF goes through :class:`~palaver.rtp.dtmf.DtmfReceiver` (one digit per press).

Send: a slot every 20 ms from ``anchor``; slot ``k`` carries timestamp ``ts0 + 160 k``, so the
timestamp follows the wall clock. A slot takes the next 20 ms of queued audio, or a DTMF
event packet, or silence (PBXs expect continuous RTP). When the caller falls behind, at most
``burst`` slots go out per call; a backlog beyond ``max_backlog`` slots is skipped (the
timestamp jumps, the marker is set) rather than bursted, and queued audio is delayed, never
dropped. Tags: ``started`` when the first frame of a run of one tag is sent, ``stopped``
when that run ends because the queue drained or the next tag began; ``clear()`` ends a run
silently.
"""

from __future__ import annotations

import math
import random
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from palaver.rtp.dtmf import DIGITS, DtmfError, DtmfReceiver, TelephoneEvent
from palaver.rtp.jitter import JitterBuffer
from palaver.rtp.packet import RtpError, RtpPacket, classify
from palaver.rtp.rtcp import RtcpSession
from palaver.rtp.srtp import SrtpContext, SrtpParams

__all__ = [
    "FRAME_BYTES",
    "FRAME_SECONDS",
    "SILENCE_BYTE",
    "Address",
    "Encoding",
    "MediaStream",
    "PlayoutQueue",
    "StreamConfig",
    "StreamStats",
]

Address = tuple[str, int]
Encoding = Literal["PCMU", "PCMA"]
StreamDirection = Literal["sendrecv", "sendonly", "recvonly", "inactive"]

FRAME_SECONDS = 0.020
FRAME_BYTES = 160
"""20 ms of 8 kHz G.711."""
SILENCE_BYTE: dict[str, int] = {"PCMU": 0xFF, "PCMA": 0xD5}
"""The code of a zero sample in each law."""
COMFORT_NOISE = 13
_HEADER = struct.Struct("!BBHII")
_MAX_PAYLOAD = 1280  # 160 ms of G.711: anything bigger is not a phone


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """What the SDP negotiation settled for the stream."""

    payload_type: int
    encoding: Encoding
    remote: Address
    remote_rtcp: Address | None = None
    telephone_event: int | None = None
    srtp: SrtpParams | None = None
    direction: StreamDirection = "sendrecv"
    """Ours, from the answer: we send unless recvonly/inactive. Inactivity is watched only
    when sendrecv: a hold (the peer offered sendonly/inactive; some stop sending even the
    music) or a one-way stream must not end the call."""
    inactivity_seconds: float | None = 30.0
    jitter_delay_ms: int = 60
    fill_silence: bool = True
    """Once audio has arrived, yield silence frames whenever the jitter buffer starves."""
    send_silence: bool = True
    """Send silence packets when nothing is queued (continuous RTP), else send nothing."""

    @property
    def sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


@dataclass(slots=True)
class StreamStats:
    # receive
    received: int = 0
    """RTP packets accepted (audio, telephone-event, comfort noise)."""
    received_bytes: int = 0
    non_rtp_dropped: int = 0
    """STUN, DTLS, anything that is not RTP or RTCP."""
    malformed: int = 0
    foreign_dropped: int = 0
    """Packets from a source other than the latched one."""
    payload_type_dropped: int = 0
    srtp_dropped: int = 0
    dtmf_digits: int = 0
    frames_out: int = 0
    concealed_frames: int = 0
    fill_frames: int = 0
    late: int = 0
    """Packets that reached the jitter buffer after their play-out slot."""
    # send
    sent: int = 0
    sent_bytes: int = 0
    audio_frames_sent: int = 0
    silence_sent: int = 0
    dtmf_sent: int = 0
    late_slots: int = 0
    """Slots sent more than one slot period after their time (the caller was late)."""
    skipped_slots: int = 0
    """Slots given up after a stall longer than ``max_backlog``."""
    send_errors: int = 0
    # rtcp
    rtcp_received: int = 0
    rtcp_sent: int = 0


class PlayoutQueue:
    """Queued G.711 audio by tag, handed out 20 ms at a time.

    Chunks of one tag are cut seamlessly across ``play`` calls; a partial last frame is padded
    with silence only when the tag ends (the next chunk has another tag, or the queue is
    empty: the producer fell behind, and waiting would only delay the audio further).
    """

    def __init__(self, silence: int) -> None:
        self._silence = silence
        self._chunks: deque[tuple[str, bytes]] = deque()
        self._offset = 0
        self.queued_bytes = 0

    def __len__(self) -> int:
        return self.queued_bytes

    def play(self, g711: bytes, tag: str) -> None:
        if g711:
            self._chunks.append((tag, bytes(g711)))
            self.queued_bytes += len(g711)

    def clear(self) -> int:
        """Drop everything; returns the bytes dropped."""
        dropped = self.queued_bytes
        self._chunks.clear()
        self._offset = 0
        self.queued_bytes = 0
        return dropped

    def next_frame(self) -> tuple[str, bytes] | None:
        if not self._chunks:
            return None
        tag, chunk = self._chunks[0]
        off = self._offset
        if len(chunk) - off >= FRAME_BYTES:
            frame = chunk[off : off + FRAME_BYTES]
            self._offset = off + FRAME_BYTES
            if self._offset == len(chunk):
                self._chunks.popleft()
                self._offset = 0
            self.queued_bytes -= FRAME_BYTES
            return tag, frame
        parts = [chunk[off:]]
        need = FRAME_BYTES - (len(chunk) - off)
        self._chunks.popleft()
        self._offset = 0
        while need and self._chunks and self._chunks[0][0] == tag:
            nxt = self._chunks[0][1]
            take = min(need, len(nxt))
            parts.append(nxt[:take])
            need -= take
            if take == len(nxt):
                self._chunks.popleft()
            else:
                self._offset = take
        frame = b"".join(parts)
        self.queued_bytes -= len(frame)
        if need:
            frame += bytes((self._silence,)) * need
        return tag, frame


class MediaStream:
    """Receive and send state of one RTP stream. Callbacks are plain attributes."""

    def __init__(
        self,
        config: StreamConfig,
        now: float,
        *,
        rng: random.Random | None = None,
        cname: str = "palaver",
        burst: int = 2,
        max_backlog: int = 10,
        rtcp_interval: float = 5.0,
    ) -> None:
        self._rng = rng or random.SystemRandom()
        self.stats = StreamStats()
        self.burst = burst
        self.max_backlog = max_backlog
        self.ssrc = self._rng.getrandbits(32)
        self._seq = self._rng.getrandbits(16)
        self._ts0 = self._rng.getrandbits(32)
        self.anchor: float | None = None
        """Time of slot 0; set by the scheduler (its tick grid) or at the first ``due_packets``."""
        self._slot = 0
        self._marker = True
        self._run_tag: str | None = None
        self._dtmf: deque[tuple[bytes, bool, int]] = deque()  # payload, first of a press, copies
        self._dtmf_ts = 0
        self.events: list[tuple[Literal["started", "stopped"], str]] = []
        """Tag events of the last ``due_packets``; :meth:`flush_events` delivers them."""
        self.played_frames: dict[str, int] = {}
        """20 ms frames sent per tag (the most recent 64 tags)."""
        self.on_audio: Callable[[bytes], None] | None = None
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_started: Callable[[str], None] | None = None
        self.on_stopped: Callable[[str], None] | None = None
        self.rtcp = RtcpSession(self.ssrc, cname, interval=rtcp_interval, rng=self._rng)
        self.latched: Address | None = None
        self.latched_rtcp: Address | None = None
        self.rtcp_mux = False
        """The peer sent RTCP to the RTP port: send ours there too (RFC 5761)."""
        self.queue = PlayoutQueue(SILENCE_BYTE[config.encoding])
        self.config = config
        self._configure(config, now, first=True)

    # ------------------------------------------------------------------ configuration

    def _configure(self, config: StreamConfig, now: float, *, first: bool) -> None:
        old = None if first else self.config
        self.config = config
        self._silence_byte = SILENCE_BYTE[config.encoding]
        self._silence = bytes((self._silence_byte,)) * FRAME_BYTES
        self._b1 = config.payload_type & 0x7F
        if old is None or old.srtp != config.srtp:
            if config.srtp is None:
                self.srtp = None
            elif old is not None and self.srtp is not None:
                self.srtp = self.srtp.rekeyed(config.srtp)
            else:
                self.srtp = SrtpContext(config.srtp)
        if old is None or old.remote != config.remote or old.srtp != config.srtp:
            self.latched = None
            self.latched_rtcp = None
            self.rtcp_mux = False
        if old is None or old.encoding != config.encoding or old.payload_type != config.payload_type:
            self.queue._silence = self._silence_byte
            self._jitter: JitterBuffer | None = None
            self._packet_bytes = 0
            self._rx = bytearray()
            self._rx_started = False
        self._dtmf_rx = DtmfReceiver(config.telephone_event) if config.telephone_event is not None else None
        self._last_activity = now
        self._inactive_fired = False

    def update(self, config: StreamConfig, now: float) -> None:
        """A re-INVITE: new remote, codec, keys or direction. The send side keeps its SSRC,
        sequence and timestamp (one continuous stream, RFC 3264 §8); latching restarts when
        the remote address or keys change; the inactivity timer restarts."""
        self._configure(config, now, first=False)

    @property
    def send_target(self) -> Address:
        """Where RTP goes: the latched source when there is one, else the SDP address."""
        return self.latched or self.config.remote

    @property
    def rtcp_target(self) -> Address:
        if self.rtcp_mux:
            return self.send_target
        if self.latched_rtcp is not None:
            return self.latched_rtcp
        if self.config.remote_rtcp is not None:
            return self.config.remote_rtcp
        host, port = self.send_target
        return host, port + 1

    # ------------------------------------------------------------------ receive

    def datagram(self, data: bytes, source: Address, now: float, wallclock: float | None = None) -> None:
        """A datagram that arrived on the RTP port (``wallclock``: Unix time, for RTCP RTT)."""
        kind = classify(data)
        if kind == "rtp":
            self._rtp(data, source, now)
        elif kind == "rtcp":
            if self.rtcp_datagram(data, source, now, wallclock):
                self.rtcp_mux = True
        else:
            self.stats.non_rtp_dropped += 1

    def _rtp(self, data: bytes, source: Address, now: float) -> None:
        stats = self.stats
        if self.latched is not None and source != self.latched:
            stats.foreign_dropped += 1
            return
        if self.srtp is not None:
            clear = self.srtp.unprotect(data)
            if clear is None:
                stats.srtp_dropped += 1
                return
            data = clear
        if data[0] == 0x80 and len(data) >= 12:
            # The common case (no padding, extension or CSRCs): half the cost of parse().
            _, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
            packet = RtpPacket(b1 & 0x7F, seq, ts, ssrc, data[12:], bool(b1 & 0x80))
        else:
            try:
                packet = RtpPacket.parse(data)
            except RtpError:
                stats.malformed += 1
                return
        cfg = self.config
        pt = packet.payload_type
        if pt == cfg.payload_type:
            n = len(packet.payload)
            if not 0 < n <= _MAX_PAYLOAD:
                stats.malformed += 1
                return
            self._accept(packet, source, now, len(data))
            self._audio(packet, now)
        elif pt == cfg.telephone_event and self._dtmf_rx is not None:
            self._accept(packet, source, now, len(data), timing=False)
            digit = self._dtmf_rx.feed(packet)
            if digit is not None:
                stats.dtmf_digits += 1
                if self.on_dtmf is not None:
                    self.on_dtmf(digit)
        elif pt == COMFORT_NOISE:
            self._accept(packet, source, now, len(data), timing=False)
        else:
            stats.payload_type_dropped += 1

    def _accept(
        self, packet: RtpPacket, source: Address, now: float, size: int, *, timing: bool = True
    ) -> None:
        if self.latched is None:
            self.latched = source
        self.stats.received += 1
        self.stats.received_bytes += size
        self._last_activity = now
        self.rtcp.reception.update(packet.ssrc, packet.sequence_number, packet.timestamp, now, timing=timing)

    def _audio(self, packet: RtpPacket, now: float) -> None:
        n = len(packet.payload)
        jb = self._jitter
        if jb is None or n != self._packet_bytes:
            # First packet, or the peer changed its packetisation: size the buffer in its units.
            if jb is not None:
                self._drain_jitter(now)
            frame_ms = max(1, round(n / 8))
            delay = max(1, -(-self.config.jitter_delay_ms // frame_ms))
            capacity = max(delay + 2, 1000 // frame_ms)
            jb = self._jitter = JitterBuffer(frame_ms=frame_ms, delay_frames=delay, capacity=capacity)
            self._packet_bytes = n
        late = jb.stats.late
        jb.push(packet, now)
        self.stats.late += jb.stats.late - late

    def _drain_jitter(self, now: float) -> None:
        jb = self._jitter
        if jb is None:
            return
        while (f := jb.pop(now)) is not None:
            if f.concealed:
                self.stats.concealed_frames += 1
                self._rx += bytes((self._silence_byte,)) * self._packet_bytes
            else:
                self._rx += f.payload

    def poll(self, now: float) -> None:
        """Deliver due 20 ms frames to ``on_audio``; call once per 20 ms tick."""
        self._drain_jitter(now)
        rx = self._rx
        emitted = 0
        while len(rx) >= FRAME_BYTES:
            frame = bytes(rx[:FRAME_BYTES])
            del rx[:FRAME_BYTES]
            emitted += 1
            self._emit(frame)
        if emitted:
            self._rx_started = True
        elif (
            self._rx_started and self.config.fill_silence and (self._jitter is None or not len(self._jitter))
        ):
            frame = bytes(rx) + self._silence[len(rx) :]
            rx.clear()
            self.stats.fill_frames += 1
            self._emit(frame)

    def _emit(self, frame: bytes) -> None:
        self.stats.frames_out += 1
        if self.on_audio is not None:
            self.on_audio(frame)

    def check_inactive(self, now: float) -> bool:
        """True once, when no RTP arrived for ``inactivity_seconds`` on a sendrecv stream."""
        limit = self.config.inactivity_seconds
        if limit is None or self._inactive_fired or self.config.direction != "sendrecv":
            return False
        if now - self._last_activity >= limit:
            self._inactive_fired = True
            return True
        return False

    def rtcp_datagram(self, data: bytes, source: Address, now: float, wallclock: float | None = None) -> bool:
        """A datagram for the RTCP port (or RTCP muxed on the RTP port); True if it was valid.

        Only the peer's host may report (its RTP source once latched, else the SDP address)."""
        if classify(data) != "rtcp":
            self.stats.non_rtp_dropped += 1
            return False
        if source[0] != self.send_target[0]:
            self.stats.foreign_dropped += 1
            return False
        if self.srtp is not None:
            clear = self.srtp.unprotect_rtcp(data)
            if clear is None:
                self.stats.srtp_dropped += 1
                return False
            data = clear
        before = self.rtcp.malformed
        self.rtcp.receive(data, now, wallclock)
        if self.rtcp.malformed != before:
            self.stats.malformed += 1
            return False
        self.stats.rtcp_received += 1
        if source != self.latched:
            self.latched_rtcp = source
        return True

    # ------------------------------------------------------------------ send

    def play(self, g711: bytes, tag: str) -> None:
        self.queue.play(g711, tag)

    def clear(self) -> None:
        """Drop queued audio now; the current run ends without ``stopped``."""
        self.queue.clear()
        self._run_tag = None

    def send_dtmf(self, digit: str, duration_ms: int = 100, volume: int = 10) -> None:
        """Queue one RFC 4733 key press (after any queued ones): an event packet per 20 ms
        slot carrying the running duration, the final one sent three times."""
        if self.config.telephone_event is None:
            raise DtmfError("the peer did not negotiate telephone-event")
        if len(digit) != 1 or digit.upper() not in DIGITS:
            raise DtmfError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
        slots = max(2, -(-duration_ms // 20))
        if slots * FRAME_BYTES > 0xFFFF:
            raise DtmfError(f"DTMF duration {duration_ms} ms is too long for one event")
        event = DIGITS.index(digit.upper())
        for i in range(1, slots + 1):
            end = i == slots
            payload = bytes(TelephoneEvent(event, end, volume, i * FRAME_BYTES))
            self._dtmf.append((payload, i == 1, 3 if end else 1))
        # Two slots of pause after a press (0 copies: a silence slot).
        self._dtmf.append((b"", False, 0))
        self._dtmf.append((b"", False, 0))

    def _packet(
        self, payload: bytes, slot: int, marker: bool, pt: int, ts: int | None = None
    ) -> bytes | None:
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        stamp = (self._ts0 + slot * FRAME_BYTES) & 0xFFFFFFFF if ts is None else ts
        data = _HEADER.pack(0x80, (0x80 if marker else 0) | pt, seq, stamp, self.ssrc) + payload
        self.stats.sent += 1
        self.stats.sent_bytes += len(payload)
        if self.srtp is not None:
            return self.srtp.protect(data)
        return data

    def due_packets(self, now: float) -> list[tuple[bytes, float]]:
        """Packets for the slots due at ``now`` (at most ``burst``), each with its slot time.

        Tag events land in :attr:`events`; deliver them with :meth:`flush_events` once the
        packets are on the wire.
        """
        if self.anchor is None:
            self.anchor = now
        due = math.floor((now - self.anchor + 0.001) / FRAME_SECONDS) + 1 - self._slot
        if due <= 0:
            return []
        if due > self.max_backlog:
            skip = due - self.burst
            self._slot += skip
            self.stats.skipped_slots += skip
            self._marker = True
            due = self.burst
        out: list[tuple[bytes, float]] = []
        for _ in range(min(due, self.burst)):
            slot = self._slot
            self._slot = slot + 1
            at = self.anchor + slot * FRAME_SECONDS
            if now - at > FRAME_SECONDS:
                self.stats.late_slots += 1
            for data in self._fill_slot(slot):
                out.append((data, at))
        return out

    def _fill_slot(self, slot: int) -> list[bytes]:
        cfg = self.config
        sends = cfg.sends
        if self._dtmf:
            payload, marker, copies = self._dtmf.popleft()
            if not copies:  # the pause after a press
                return self._silence_slot(slot)
            if marker:  # every packet of a press carries the timestamp of its start
                self._dtmf_ts = (self._ts0 + slot * FRAME_BYTES) & 0xFFFFFFFF
            if not sends or cfg.telephone_event is None:
                return []
            self.stats.dtmf_sent += copies
            out: list[bytes] = []
            for _ in range(copies):
                p = self._packet(payload, slot, marker, cfg.telephone_event, self._dtmf_ts)
                if p is not None:
                    out.append(p)
            self._marker = True
            return out
        item = self.queue.next_frame()
        if item is None:
            if self._run_tag is not None:
                self.events.append(("stopped", self._run_tag))
                self._run_tag = None
            return self._silence_slot(slot)
        tag, frame = item
        if tag != self._run_tag:
            if self._run_tag is not None:
                self.events.append(("stopped", self._run_tag))
            self._run_tag = tag
            self.events.append(("started", tag))
        played = self.played_frames
        played[tag] = played.pop(tag, 0) + 1  # re-insert: the dict stays in recency order
        if len(played) > 64:
            del played[next(iter(played))]
        if not sends:
            return []
        self.stats.audio_frames_sent += 1
        marker = self._marker
        self._marker = False
        p = self._packet(frame, slot, marker, self._b1)
        return [] if p is None else [p]

    def _silence_slot(self, slot: int) -> list[bytes]:
        if not self.config.sends or not self.config.send_silence:
            self._marker = True
            return []
        self.stats.silence_sent += 1
        # Continuous RTP: the first packet of the stream has the marker; silence does not
        # start a talkspurt, but the audio after it does.
        marker = self._marker and self.stats.sent == 0
        p = self._packet(self._silence, slot, marker, self._b1)
        self._marker = True
        return [] if p is None else [p]

    def flush_events(self) -> None:
        events, self.events = self.events, []
        for kind, tag in events:
            cb = self.on_started if kind == "started" else self.on_stopped
            if cb is not None:
                cb(tag)

    def played_ms(self, tag: str) -> int:
        """Milliseconds of ``tag`` handed to the wire so far (its sent frames × 20 ms)."""
        return self.played_frames.get(tag, 0) * 20

    def rtp_timestamp_at(self, now: float) -> int:
        """The RTP timestamp of the sampling instant ``now`` on our send timeline (for SRs)."""
        anchor = self.anchor if self.anchor is not None else now
        return (self._ts0 + round((now - anchor) * 8000)) & 0xFFFFFFFF

    def rtcp_report(self, now: float, wallclock: float, *, bye: str | None = None) -> bytes | None:
        """A compound report (SR once we have sent, else RR) ready for the wire, or None."""
        sender = None
        if self.stats.sent:
            sender = (self.stats.sent, self.stats.sent_bytes, self.rtp_timestamp_at(now))
        data = self.rtcp.build(now, wallclock, sender, bye=bye)
        if self.srtp is not None:
            protected = self.srtp.protect_rtcp(data)
            if protected is None:
                return None
            data = protected
        self.stats.rtcp_sent += 1
        return data
