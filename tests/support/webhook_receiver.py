"""A webhook receiver as a Palaver user writes one: verify with the stock ``openai`` SDK, then decide.

    with WebhookReceiver(secret, decide=lambda event: client.realtime.calls.accept(...)) as hook:
        ...  # point PALAVER_WEBHOOK_URL at hook.url
        event = hook.wait_event(timeout=10)

Each POST is verified and parsed with ``OpenAI(webhook_secret=...).webhooks.unwrap`` (a bad
signature answers 400 and is recorded in ``rejected``); the request is answered 200 at once and
``decide(event)`` runs afterwards on its own thread, the way OpenAI recommends (answer fast,
accept or reject through the REST API). ``fail_first`` answers the first N deliveries with 503
to exercise the sender's retries.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import openai

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    def __init__(
        self,
        secret: str,
        decide: Callable[[Any], None] | None = None,
        *,
        fail_first: int = 0,
    ) -> None:
        self._client = openai.OpenAI(api_key="unused", webhook_secret=secret)
        #: Runs on its own thread with each verified event (may be set after construction).
        self.decide = decide
        self._fail_left = fail_first
        self._lock = threading.Lock()
        self.events: queue.Queue[Any] = queue.Queue()
        self.deliveries = 0
        self.rejected: list[str] = []
        self.decision_errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.deliveries += 1
                    failing = receiver._fail_left > 0
                    if failing:
                        receiver._fail_left -= 1
                if failing:
                    self._answer(503)
                    return
                try:
                    event = receiver._client.webhooks.unwrap(body, dict(self.headers.items()))
                except Exception as exc:  # bad signature or payload: the sender must learn
                    receiver.rejected.append(repr(exc))
                    self._answer(400)
                    return
                self._answer(200)
                receiver.events.put(event)
                if receiver.decide is not None:
                    thread = threading.Thread(target=receiver._run_decision, args=(event,), daemon=True)
                    receiver._threads.append(thread)
                    thread.start()

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhook"

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
