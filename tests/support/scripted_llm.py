"""A scripted, OpenAI-compatible Chat Completions server: the one sanctioned test double.

It speaks real HTTP on 127.0.0.1 (Starlette app, uvicorn in a background thread), so the
code under test uses its ordinary LLM client. A test pushes "turns"; each request to
``POST /v1/chat/completions`` consumes one. With the queue empty the default behaviour
applies (``"echo"``: answer ``"You said: <last user text>."``; ``"error"``: answer 500).

    with ScriptedLLM() as llm:
        llm.push_text("Hello there. How can I help?")
        llm.push_tool_call("get_weather", {"city": "Paris"})
        ...  # point the client at llm.base_url
        assert llm.requests[0]["messages"][-1]["role"] == "user"
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["ScriptedLLM", "ToolCall"]

DefaultBehaviour = Literal["echo", "error"]
Arguments = str | Mapping[str, Any]


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str = "{}"
    call_id: str | None = None


@dataclass(frozen=True)
class _Reply:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class _Error:
    status: int
    message: str


@dataclass(frozen=True)
class _Hang:
    pass


_Turn = _Reply | _Error | _Hang


@dataclass
class _State:
    turns: deque[_Turn] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnects: int = 0
    generation: int = 0  # bumped by reset()/stop() to release hanging requests


def _args_text(arguments: Arguments) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _word_chunks(text: str) -> list[str]:
    """Split into word-sized pieces whose concatenation is ``text`` (" there." style)."""
    return [piece for piece in re.split(r"(?<=\S)(?=\s)", text) if piece]


def _fragments(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _count_tokens(body: Mapping[str, Any]) -> int:
    messages = body.get("messages") or []
    return sum(len(_message_text(m).split()) + 4 for m in messages if isinstance(m, dict))


class ScriptedLLM:
    """OpenAI-compatible Chat Completions server replaying a script of turns."""

    def __init__(self, *, chunk_delay: float = 0.0, default: DefaultBehaviour = "echo") -> None:
        self.chunk_delay = chunk_delay
        self.default: DefaultBehaviour = default
        self._lock = threading.Lock()
        self._state = _State()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("ScriptedLLM is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> ScriptedLLM:
        if self._thread is not None:
            raise RuntimeError("ScriptedLLM already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="scripted-llm", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError("ScriptedLLM did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._state.generation += 1
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------- script
    def push_text(self, text: str) -> None:
        """Next request gets this assistant text (streamed in word-sized chunks)."""
        self._push(_Reply(text=text))

    def push_tool_call(self, name: str, arguments: Arguments = "{}", call_id: str | None = None) -> None:
        """Next request gets one function tool call (``finish_reason="tool_calls"``)."""
        self.push_tool_calls([ToolCall(name, _args_text(arguments), call_id)])

    def push_tool_calls(self, calls: Iterable[ToolCall | tuple[str, Arguments]], *, text: str = "") -> None:
        """Next request gets several tool calls in one turn, optionally preceded by text."""
        built = tuple(c if isinstance(c, ToolCall) else ToolCall(c[0], _args_text(c[1])) for c in calls)
        if not built:
            raise ValueError("push_tool_calls needs at least one call")
        self._push(_Reply(text=text, tool_calls=built))

    def push_error(self, status: int = 500, message: str = "scripted failure", *, times: int = 1) -> None:
        """Next ``times`` requests get an OpenAI-style error body with this HTTP status."""
        for _ in range(times):
            self._push(_Error(status, message))

    def push_hang(self) -> None:
        """Next request gets headers (when streaming) and then nothing, until the client
        disconnects or the script is reset/stopped."""
        self._push(_Hang())

    def reset(self) -> None:
        """Forget the queue, recorded requests and counters; release hanging requests."""
        with self._lock:
            generation = self._state.generation + 1
            self._state = _State(generation=generation)
        self.chunk_delay = 0.0
        self.default = "echo"

    # ------------------------------------------------------------------ records
    @property
    def requests(self) -> list[dict[str, Any]]:
        """Parsed JSON bodies of every chat completion request, oldest first."""
        with self._lock:
            return list(self._state.requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._state.headers)

    @property
    def disconnects(self) -> int:
        """How many responses the client abandoned before they were complete."""
        with self._lock:
            return self._state.disconnects

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._state.turns)

    async def wait_for_requests(self, count: int, limit: float = 10.0) -> list[dict[str, Any]]:
        """Wait (without blocking the event loop, at most ``limit`` s) for ``count`` requests."""
        deadline = time.monotonic() + limit
        while len(reqs := self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"ScriptedLLM got {len(reqs)} requests, expected {count}")
            await asyncio.sleep(0.02)
        return reqs

    # ---------------------------------------------------------------- internals
    def _push(self, turn: _Turn) -> None:
        with self._lock:
            self._state.turns.append(turn)

    def _take(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[_Turn, int]:
        with self._lock:
            self._state.requests.append(body)
            self._state.headers.append(headers)
            generation = self._state.generation
            if self._state.turns:
                return self._state.turns.popleft(), generation
        if self.default == "error":
            return _Error(500, "ScriptedLLM: script exhausted"), generation
        users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
        last = _message_text(users[-1]).strip() if users else ""
        return _Reply(text=f"You said: {last}."), generation

    def _released(self, generation: int) -> bool:
        with self._lock:
            return self._state.generation != generation

    def _note_disconnect(self) -> None:
        with self._lock:
            self._state.disconnects += 1

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        model = {"id": "scripted", "object": "model", "created": 0, "owned_by": "palaver-tests"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _chat(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error_response(400, "request body is not JSON", "invalid_request_error")
        if not isinstance(body, dict):
            return _error_response(400, "request body must be a JSON object", "invalid_request_error")
        turn, generation = self._take(body, dict(request.headers))
        if isinstance(turn, _Error):
            return _error_response(turn.status, turn.message)
        stream = bool(body.get("stream"))
        if isinstance(turn, _Hang):
            if stream:
                return _sse(self._hang_stream(generation))
            await self._hang(generation, request)
            return _error_response(503, "ScriptedLLM: hang released")
        completion = _Completion(body, turn)
        if stream:
            return _sse(self._stream(completion, generation))
        return JSONResponse(completion.whole())

    async def _hang(self, generation: int, request: Request | None = None) -> None:
        """Wait until released. A streaming response is cancelled by Starlette when the client
        goes away; a plain one polls for the disconnect itself (``request``)."""
        try:
            while not self._released(generation):
                if request is not None and await request.is_disconnected():
                    self._note_disconnect()
                    return
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self._note_disconnect()
            raise

    async def _hang_stream(self, generation: int) -> AsyncIterator[str]:
        await self._hang(generation)
        return
        yield  # pragma: no cover - makes this an async generator

    async def _stream(self, completion: _Completion, generation: int) -> AsyncIterator[str]:
        finished = False
        try:
            for chunk in completion.chunks():
                if self._released(generation):
                    return
                yield f"data: {json.dumps(chunk)}\n\n"
                if self.chunk_delay > 0:
                    await asyncio.sleep(self.chunk_delay)
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            if not finished and not self._released(generation):
                self._note_disconnect()


class _Completion:
    """Renders one scripted reply as OpenAI chat.completion(.chunk) objects."""

    def __init__(self, body: Mapping[str, Any], reply: _Reply) -> None:
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())
        self.model = str(body.get("model") or "scripted")
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.text_pieces = _word_chunks(reply.text)
        self.calls = [(c, c.call_id or "call_" + secrets.token_hex(12)) for c in reply.tool_calls]
        self.finish_reason = "tool_calls" if self.calls else "stop"
        # Like a real server, stop at max_tokens (one word piece counts as one token here).
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and len(self.text_pieces) > limit:
            self.text_pieces = self.text_pieces[:limit]
            self.calls = []
            self.finish_reason = "length"
        prompt = _count_tokens(body)
        completion = len(self.text_pieces) + sum(len(_fragments(c.arguments)) + 1 for c, _ in self.calls)
        self.usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def chunks(self) -> Iterable[dict[str, Any]]:
        yield self._chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in self.text_pieces:
            yield self._chunk({"content": piece})
        for index, (call, call_id) in enumerate(self.calls):
            head = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            yield self._chunk({"tool_calls": [head]})
            for fragment in _fragments(call.arguments):
                yield self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        yield self._chunk({}, self.finish_reason)
        if self.include_usage:
            last = self._chunk({})
            last["choices"] = []
            last["usage"] = self.usage
            yield last

    def whole(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self.text_pieces) or (None if self.calls else ""),
            "refusal": None,
        }
        if self.calls:
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c, call_id in self.calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
            ],
            "usage": self.usage,
        }


def _sse(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _error_response(status: int, message: str, kind: str = "server_error") -> JSONResponse:
    error = {"message": message, "type": kind, "param": None, "code": None}
    return JSONResponse({"error": error}, status_code=status)
