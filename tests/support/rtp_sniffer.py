"""Watch RTP on the loopback interface with kernel timestamps, as a packet capture would.

    with RtpSniffer(port=media_port) as sniffer:      # UDP packets to that port
        ...
    packets = sniffer.packets()                       # [(kernel time, src port, dst port, rtp bytes)]

An ``AF_PACKET`` socket on ``lo`` (Linux, needs root or CAP_NET_RAW: ``RtpSniffer.available()``)
sees each loopback packet once as it is sent (``PACKET_OUTGOING``); receive copies are skipped.
Times come from the kernel (``SO_TIMESTAMPNS``), not from this thread's wake-ups, so they show
how a sender paced its packets, not how busy the test machine was.
"""

from __future__ import annotations

import socket
import struct
import threading
from types import TracebackType

__all__ = ["RtpPacketSeen", "RtpSniffer"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)

RtpPacketSeen = tuple[float, int, int, bytes]


class RtpSniffer:
    def __init__(self, port: int, interface: str = "lo") -> None:
        self.port = port
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self._sock.bind((interface, 0))
        self._sock.settimeout(0.2)
        self._seen: list[RtpPacketSeen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtp-sniffer", daemon=True)

    @staticmethod
    def available() -> bool:
        try:
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)).close()
        except (PermissionError, OSError, AttributeError):
            return False
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _, address = self._sock.recvmsg(65535, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] != PACKET_OUTGOING or len(data) < 14 + 20 + 8:
                continue
            if struct.unpack("!H", data[12:14])[0] != 0x0800:  # IPv4 only
                continue
            ip = data[14:]
            header_length = (ip[0] & 0x0F) * 4
            if ip[9] != 17:  # UDP
                continue
            src, dst = struct.unpack("!HH", ip[header_length : header_length + 4])
            if dst != self.port:
                continue
            when = 0.0
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanos = struct.unpack("qq", value[:16])
                    when = seconds + nanos / 1e9
            payload = ip[header_length + 8 :]
            with self._lock:
                self._seen.append((when, src, dst, bytes(payload)))

    def packets(self) -> list[RtpPacketSeen]:
        with self._lock:
            return list(self._seen)

    def __enter__(self) -> RtpSniffer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
