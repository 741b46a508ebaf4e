"""A webhook receiver on 127.0.0.1 in a thread: answers from a script, records every request."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: A scripted answer: an HTTP status, or DROP to close the connection without answering.
DROP = 0


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    #: Answers for successive requests; once used up, ``then`` answers.
    script: list[int] = field(default_factory=list)
    then: int = 200
    deliveries: list[Delivery] = field(default_factory=list)
    #: Called (in the server thread) with each delivery answered 2xx.
    on_delivery: Callable[[Delivery], None] | None = None
    arrived: threading.Event = field(default_factory=threading.Event)

    def next_status(self) -> int:
        return self.script.pop(0) if self.script else self.then


@contextlib.contextmanager
def webhook_receiver(script: list[int] | None = None, then: int = 200) -> Iterator[Receiver]:
    receiver = Receiver(url="", script=list(script or []), then=then)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            delivery = Delivery({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            receiver.deliveries.append(delivery)
            status = receiver.next_status()
            if status == DROP:
                self.close_connection = True
                receiver.arrived.set()
                return
            if 200 <= status < 300 and receiver.on_delivery is not None:
                receiver.on_delivery(delivery)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
            receiver.arrived.set()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/openai"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
