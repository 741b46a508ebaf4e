"""The floor of ``bench/sip_calls.py``: a bare asyncio UDP echo. Every datagram goes straight back
to its sender from one socket, with no parsing, no jitter buffer and no pacing: what the event
loop and the kernel cost per packet, below which no Python RTP server can go.

    .venv/bin/python bench/udp_echo.py --port 31000     # prints "ready <port>", then echoes;
                                                        # a line (or EOF) on stdin stops it and
                                                        # prints {"received": n, "echoed": n}

It runs on uvloop when installed, as ``palaver serve`` does (uvicorn picks uvloop), so the two
are compared on the same event loop. The socket's receive buffer is raised to 4 MB: one socket
carries every stream here, where the server has one socket per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys

__all__ = ["UdpEcho", "open_echo"]

RECEIVE_BUFFER = 4 * 1024 * 1024


class UdpEcho(asyncio.DatagramProtocol):
    """Echoes each datagram to its source; counts what it received and what it sent back."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0
        self.echoed = 0
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.received += 1
        if self.transport is not None:
            self.transport.sendto(data, addr)
            self.echoed += 1

    def error_received(self, exc: Exception) -> None:
        self.errors += 1

    def counts(self) -> dict[str, int]:
        return {"received": self.received, "echoed": self.echoed, "errors": self.errors}


async def open_echo(host: str = "127.0.0.1", port: int = 0) -> tuple[asyncio.DatagramTransport, UdpEcho]:
    """Bind the echo on ``host:port`` (0: any free port); close the transport to stop it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.bind((host, port))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(UdpEcho, sock=sock)
    return transport, protocol


async def _serve(port: int) -> None:
    transport, echo = await open_echo("127.0.0.1", port)
    print("ready", transport.get_extra_info("sockname")[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    transport.close()
    print(json.dumps(echo.counts()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-uvloop", action="store_true", help="the stock asyncio loop")
    args = parser.parse_args()
    if not args.no_uvloop:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
    asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
