"""A webhook receiver on 127.0.0.1, in a thread: the one every webhook test talks to.

As a Palaver user writes one (``secret`` given): each delivery is verified and parsed with the
stock SDK (``OpenAI(webhook_secret=...).webhooks.unwrap``; a bad signature is answered 400 and
recorded in ``rejected``), answered 200 at once, and ``decide(event)`` runs afterwards on its
own thread, the way OpenAI recommends (answer fast, then accept or reject through REST)::

    with WebhookReceiver(secret, decide=lambda event: client.realtime.calls.accept(...)) as hook:
        ...  # point PALAVER_WEBHOOK_URL at hook.url
        event = hook.wait_event(timeout=10)

As a scripted peer for the sender's own tests: ``script`` answers successive deliveries with
those statuses (``DROP``: close the connection without answering), then ``then``; every
delivery is recorded raw in ``deliveries`` and sets ``arrived``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import openai

__all__ = ["DROP", "Delivery", "WebhookReceiver"]

#: A scripted answer: close the connection without answering.
DROP = 0


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]  # lower-case names
    body: bytes


class WebhookReceiver:
    def __init__(
        self,
        secret: str | None = None,
        decide: Callable[[Any], None] | None = None,
        *,
        script: list[int] | None = None,
        then: int = 200,
    ) -> None:
        self._client = openai.OpenAI(api_key="unused", webhook_secret=secret) if secret else None
        #: Runs on its own thread with each verified event (may be set after construction).
        self.decide = decide
        self._script = list(script or [])
        self._then = then
        self._lock = threading.Lock()
        self.events: queue.Queue[Any] = queue.Queue()
        self.deliveries: list[Delivery] = []
        self.arrived = threading.Event()
        self.rejected: list[str] = []
        self.decision_errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver._record(Delivery({k.lower(): v for k, v in self.headers.items()}, body))
                if status == DROP:
                    self.close_connection = True
                elif not 200 <= status < 300 or receiver._client is None:
                    self._answer(status)
                else:
                    receiver._verify_and_decide(self, body)
                receiver.arrived.set()

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._handler = Handler
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhook"

    def _record(self, delivery: Delivery) -> int:
        with self._lock:
            self.deliveries.append(delivery)
            return self._script.pop(0) if self._script else self._then

    def _verify_and_decide(self, handler: Any, body: bytes) -> None:
        assert self._client is not None
        try:
            event = self._client.webhooks.unwrap(body, dict(handler.headers.items()))
        except Exception as exc:  # bad signature or payload: the sender must learn
            self.rejected.append(repr(exc))
            handler._answer(400)
            return
        handler._answer(200)
        self.events.put(event)
        if self.decide is not None:
            thread = threading.Thread(target=self._run_decision, args=(event,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run_decision(self, event: Any) -> None:
        assert self.decide is not None
        try:
            self.decide(event)
        except BaseException as exc:  # surfaced by the test through decision_errors
            self.decision_errors.append(exc)

    def wait_event(self, timeout: float = 15.0) -> Any:
        return self.events.get(timeout=timeout)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=10)
        if self._client is not None:
            self._client.close()
