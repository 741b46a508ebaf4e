"""A cap on REST request bodies (``PALAVER_HTTP_MAX_BODY_BYTES``), as an ASGI middleware.

The body is read here chunk by chunk, counting (``Content-Length`` or chunked alike), and no
more than the cap is ever held in memory; a body within the cap is then handed to the app as
one message (REST bodies are small JSON documents, so nothing is lost by not streaming them).
A body over the cap is answered 413 without reaching the app. So that the client reads that
answer instead of a connection reset mid-upload, the rest of a refused body is read and
dropped first, at most ``DRAIN_FACTOR`` times the cap more and for ``DRAIN_SECONDS`` (what
nginx calls a lingering close); a ``Content-Length`` beyond even that is refused before any of
its body is read. WebSocket and lifespan traffic passes through untouched.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "too_large_body"]

TOO_LARGE = 413
#: A refused body is read on and dropped for at most this many times the cap ...
DRAIN_FACTOR = 4
#: ... and this many seconds, before the 413 is sent.
DRAIN_SECONDS = 5.0


def too_large_body(limit: int) -> bytes:
    """OpenAI's error shape for a body over the cap."""
    error = {
        "message": f"The request body is too large: at most {limit} bytes are accepted.",
        "type": "invalid_request_error",
        "code": "request_too_large",
        "param": None,
    }
    return json.dumps({"error": error}).encode()


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes * (1 + DRAIN_FACTOR):
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before the body was complete
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                chunks.clear()
                if message.get("more_body", False) and not await self._drain(receive):
                    return
                await self._refuse(send)
                return
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for http.disconnect as usual

        await self.app(scope, replay, send)

    async def _drain(self, receive: Receive) -> bool:
        """Read and drop the rest of a refused body (bounded); False if the client left."""
        budget = self.max_bytes * DRAIN_FACTOR
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while budget > 0:
                    message = await receive()
                    if message["type"] != "http.request":
                        return False
                    budget -= len(message.get("body", b""))
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            pass
        return True

    async def _refuse(self, send: Send) -> None:
        body = too_large_body(self.max_bytes)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": TOO_LARGE, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None
