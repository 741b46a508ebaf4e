"""The REST body cap as an ASGI middleware, driven by hand: no sockets, no server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from palaver.server.body_limit import BodyLimit

LIMIT = 100


class App:
    """Records what the wrapped app got; answers 200 with the body's length."""

    def __init__(self) -> None:
        self.called = False
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        if scope["type"] == "http":
            while True:
                message = await receive()
                self.body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(self.body)).encode()})


class Client:
    """The server side of one request: the chunks to hand out, and what was sent back."""

    def __init__(self, chunks: list[bytes], *, disconnect_after: bool = False) -> None:
        self.messages: list[Message] = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        if disconnect_after:
            self.messages[-1]["more_body"] = True
            self.messages.append({"type": "http.disconnect"})
        self.read = 0  # chunks handed out
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.read >= len(self.messages):
            return {"type": "http.disconnect"}
        self.read += 1
        return self.messages[self.read - 1]

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


def _scope(headers: list[tuple[bytes, bytes]] | None = None, kind: str = "http") -> Scope:
    return {
        "type": kind,
        "method": "POST",
        "path": "/v1/realtime/calls/rtc_x/accept",
        "headers": headers or [],
    }


async def _run(client: Client, scope: Scope) -> App:
    app = App()
    await BodyLimit(app, max_bytes=LIMIT)(scope, client.receive, client.send)
    return app


async def test_a_declared_length_far_over_the_cap_is_refused_before_any_body_is_read() -> None:
    client = Client([b"x" * 500, b"x" * 60])
    app = await _run(client, _scope([(b"content-length", b"560")]))  # over cap + 4x cap to drain
    assert not app.called and client.read == 0
    assert client.status == 413
    error = client.json()["error"]
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
    assert str(LIMIT) in error["message"] and error["param"] is None


async def test_a_body_a_little_over_the_cap_is_read_to_its_end_then_refused() -> None:
    client = Client([b"x" * 50, b"x" * 60])
    app = await _run(client, _scope([(b"content-length", b"110")]))
    assert not app.called and client.read == 2  # drained, so the client reads the 413
    assert client.status == 413


async def test_a_chunked_body_over_the_cap_is_refused_and_drained() -> None:
    client = Client([b"x" * 40] * 5)  # no Content-Length
    app = await _run(client, _scope())
    assert not app.called
    assert client.status == 413
    assert client.read == 5


async def test_an_endless_body_is_drained_only_so_far() -> None:
    client = Client([b"x" * 10] * 10_000)
    app = await _run(client, _scope())
    assert not app.called and client.status == 413
    # the cap (100) read, then at most 4x the cap dropped: 51 chunks of 10 bytes, not 10,000
    assert client.read == 51


async def test_a_client_leaving_while_its_refused_body_is_drained_gets_no_answer() -> None:
    client = Client([b"x" * 60, b"x" * 60], disconnect_after=True)
    app = await _run(client, _scope())
    assert not app.called and client.sent == []


async def test_a_body_longer_than_its_declared_length_is_still_refused() -> None:
    client = Client([b"x" * 60, b"x" * 60])
    app = await _run(client, _scope([(b"content-length", b"10")]))
    assert not app.called and client.status == 413


@pytest.mark.parametrize("size", [0, 1, LIMIT])
async def test_a_body_within_the_cap_reaches_the_app_whole(size: int) -> None:
    chunks = [b"a" * (size // 2), b"b" * (size - size // 2)]
    client = Client(chunks)
    app = await _run(client, _scope([(b"content-length", str(size).encode())]))
    assert app.called and app.body == b"a" * (size // 2) + b"b" * (size - size // 2)
    assert client.status == 200 and client.sent[1]["body"] == str(size).encode()


async def test_after_the_body_the_app_still_hears_the_disconnect() -> None:
    client = Client([b"{}"])
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())

    await BodyLimit(app, max_bytes=LIMIT)(_scope(), client.receive, client.send)
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]
    assert seen[0]["body"] == b"{}"


async def test_a_client_leaving_mid_body_ends_the_request_without_an_answer() -> None:
    client = Client([b"x" * 10], disconnect_after=True)
    app = await _run(client, _scope())
    assert not app.called and client.sent == []


async def test_websocket_scopes_pass_through_untouched() -> None:
    client = Client([b"x" * 1000])
    app = await _run(client, _scope([(b"content-length", b"1000")], kind="websocket"))
    assert app.called and client.read == 0
