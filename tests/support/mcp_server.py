"""A real MCP server for tests, built with the official ``mcp`` SDK (``MCPServer``).

    with running_mcp_server(token="s3cret") as url:       # streamable HTTP, http://127.0.0.1:<port>/mcp
        ...
    with running_mcp_server(sse=True) as url:             # legacy HTTP+SSE, http://127.0.0.1:<port>/sse
        ...
    server = McpTestServer(sse=True, path="/events").start()   # SSE where no "/sse" suffix hints at it
    try:
        server.kill()                                      # SIGKILL: a server dying mid-session
    finally:
        server.stop()

The server runs as a subprocess (``python -m tests.support.mcp_server``) on a port of
127.0.0.1 that it binds itself and reports on stdout, so nothing races for the port and a
test can kill it outright. Its tools (a restaurant, plus helpers for failure cases):

- ``check_availability(date, party_size)`` (annotated ``readOnlyHint``) → text
- ``book_table(date, time, party_size, name)`` (``destructiveHint``) → text
- ``get_menu()`` (read-only) → structured content only, no text part
- ``get_logo()`` → one text part and one PNG image part
- ``fail(message)`` → raises, so the result has ``isError``
- ``slow(seconds)`` → sleeps, then answers

Options: ``token`` (every request needs ``Authorization: Bearer <token>``, else 401),
``require_headers`` (each named header must carry the given value, else 403),
``page_size`` (``tools/list`` is paginated with opaque cursors) and ``port`` (to restart a
server where it was).

``EverythingServer`` runs the npm reference server ``@modelcontextprotocol/server-everything``
(installed into ``.venv/node`` by ``scripts/_venv.sh``) the same way, on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    CallToolResult,
    ImageContent,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    ToolAnnotations,
)

from tests.support.peers import missing_peer

__all__ = [
    "EVERYTHING_SERVER",
    "EverythingServer",
    "McpTestServer",
    "everything_server_missing",
    "require_everything_server",
    "running_mcp_server",
]

_REPO_ROOT = Path(__file__).resolve().parents[2]
_READY = "MCP_TEST_SERVER_LISTENING"
# A 1×1 transparent PNG.
_PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


class _ServerProcess:
    """A server subprocess on 127.0.0.1 that prints ``<ready> ... <port>`` once listening.

    Its stdout and stderr go to a temporary log file (``output()``), polled for that line.
    """

    name = "server"
    _ready = re.compile(rf"^{_READY} (\d+)$", re.MULTILINE)

    def __init__(self, path: str) -> None:
        self.path = path
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = Path(tempfile.mkstemp(prefix="palaver-mcp-server-", suffix=".log")[1])

    def _command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} not started")
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def base_url(self) -> str:
        return self.url.removesuffix(self.path)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def output(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 30.0) -> Self:
        if self._proc is not None:
            raise RuntimeError(f"{self.name} already started")
        command, env = self._command()
        with self._log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                command,
                cwd=_REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.port = self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> int:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = self._ready.search(self.output())
            if match:
                return int(match.group(1))
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self._proc.returncode}):\n{self.output()}")
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} not listening after {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the server (no goodbye to its clients); ``stop()`` still cleans up."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            self._log_path.unlink()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class McpTestServer(_ServerProcess):
    """The Python test MCP server (this module) as a subprocess."""

    name = "MCP test server"

    def __init__(
        self,
        *,
        token: str | None = None,
        sse: bool = False,
        path: str | None = None,
        page_size: int | None = None,
        require_headers: Mapping[str, str] | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(path or ("/sse" if sse else "/mcp"))
        self.fixed_port = port
        self.token = token
        self.sse = sse
        self.page_size = page_size
        self.require_headers = dict(require_headers or {})

    def _command(self) -> tuple[list[str], dict[str, str]]:
        command = [sys.executable, "-m", "tests.support.mcp_server", "--path", self.path]
        if self.fixed_port:
            command += ["--port", str(self.fixed_port)]
        if self.sse:
            command.append("--sse")
        if self.page_size is not None:
            command += ["--page-size", str(self.page_size)]
        for name, value in self.require_headers.items():
            command += ["--require-header", f"{name}={value}"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("MCP_TEST_SERVER_TOKEN", None)
        if self.token is not None:
            env["MCP_TEST_SERVER_TOKEN"] = self.token  # not on the command line
        return command, env


#: Where ``scripts/_venv.sh`` installs the Node packages of ``package-lock.json``.
NODE_MODULES = Path(sys.prefix) / "node" / "node_modules"
EVERYTHING_SERVER = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"

# Preloaded into node: the reference server calls `app.listen(PORT)`, which binds every
# interface and reports the port it was given. This binds 127.0.0.1 only and prints the
# port actually bound (PORT=0 picks a free one).
_NODE_LOOPBACK = f"""
import net from "node:net";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {{
  this.once("listening", () => {{
    const address = this.address();
    if (address && typeof address === "object") process.stdout.write("\\n{_READY} " + address.port + "\\n");
  }});
  if (typeof args[0] === "number" || typeof args[0] === "string") {{
    const callback = typeof args[args.length - 1] === "function" ? [args[args.length - 1]] : [];
    return listen.call(this, Number(args[0]), "127.0.0.1", ...callback);
  }}
  return listen.apply(this, args);
}};
"""


def everything_server_missing() -> str | None:
    """Why the npm reference server cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not EVERYTHING_SERVER.is_file():
        return f"{EVERYTHING_SERVER} is missing (scripts/test installs it with npm ci)"
    return None


def require_everything_server() -> None:
    """Fail under CI, skip elsewhere, when the npm reference server cannot run here."""
    why = everything_server_missing()
    if why is not None:
        missing_peer(f"the npm MCP reference server ({why})", "scripts/test installs it with npm ci")


class EverythingServer(_ServerProcess):
    """``@modelcontextprotocol/server-everything`` (the npm reference server) on loopback."""

    name = "MCP reference server (server-everything)"

    def __init__(self, *, transport: str = "streamableHttp") -> None:
        super().__init__("/sse" if transport == "sse" else "/mcp")
        self.transport = transport

    def _command(self) -> tuple[list[str], dict[str, str]]:
        node = shutil.which("node") or "node"
        preload = "data:text/javascript," + urllib.parse.quote(_NODE_LOOPBACK)
        # A minimal environment: the server has a tool that reveals its environment.
        env = {"PATH": os.environ.get("PATH", ""), "PORT": "0", "NODE_ENV": "production"}
        return [node, "--import", preload, str(EVERYTHING_SERVER), self.transport], env


@contextlib.contextmanager
def running_mcp_server(
    *,
    token: str | None = None,
    sse: bool = False,
    path: str | None = None,
    page_size: int | None = None,
    require_headers: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Start the test MCP server, yield its endpoint URL, stop it on exit."""
    with McpTestServer(
        token=token, sse=sse, path=path, page_size=page_size, require_headers=require_headers
    ) as server:
        yield server.url


# --- the server process ---------------------------------------------------------------


def _build_server(page_size: int | None) -> Any:
    class PagedServer(MCPServer):
        async def _handle_list_tools(
            self, ctx: Any, params: PaginatedRequestParams | None
        ) -> ListToolsResult:
            tools = await self.list_tools()
            if page_size is None:
                return ListToolsResult(tools=tools)
            start = int(params.cursor) if params is not None and params.cursor else 0
            end = start + page_size
            return ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None)

    server = PagedServer("palaver-test-restaurant", instructions="A restaurant booking service for tests.")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def check_availability(date: str, party_size: int) -> str:
        """Check whether a table is free on a date."""
        if party_size > 8:
            return f"No table for {party_size} on {date}."
        return f"A table for {party_size} is available on {date} at 19:00."

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
    def book_table(date: str, time: str, party_size: int, name: str) -> str:
        """Book a table."""
        return f"Booked a table for {party_size} on {date} at {time} under the name {name}."

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def get_menu() -> CallToolResult:
        """Today's menu as structured data."""
        return CallToolResult(content=[], structured_content={"starter": "soup", "main": "risotto"})

    @server.tool()
    def get_logo() -> CallToolResult:
        """The restaurant's logo."""
        return CallToolResult(
            content=[
                TextContent(text="Our logo:"),
                ImageContent(data=_PNG_1PX, mime_type="image/png"),
            ]
        )

    @server.tool()
    def fail(message: str) -> str:
        """Always fails with the given message."""
        raise ToolError(message)

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer."""
        await asyncio.sleep(seconds)
        return f"slept {seconds} s"

    return server


def _guard(app: Any, token: str | None, required: Mapping[str, str]) -> Any:
    """ASGI middleware: 401 without the bearer token, 403 without a required header."""
    wanted = {name.lower().encode(): value.encode() for name, value in required.items()}

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            status = 0
            if token is not None and headers.get(b"authorization") != f"Bearer {token}".encode():
                status = 401
            elif any(headers.get(name) != value for name, value in wanted.items()):
                status = 403
            if status:
                body = json.dumps({"error": "unauthorized" if status == 401 else "forbidden"}).encode()
                extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [(b"content-type", b"application/json"), *extra],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def _main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="palaver's test MCP server (loopback only)")
    parser.add_argument("--sse", action="store_true", help="serve the legacy HTTP+SSE transport")
    parser.add_argument("--path", default=None)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--page-size", type=int, default=None)
    parser.add_argument("--require-header", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    token = os.environ.get("MCP_TEST_SERVER_TOKEN")
    required = dict(item.split("=", 1) for item in args.require_header)

    server = _build_server(args.page_size)
    if args.sse:
        app = server.sse_app(sse_path=args.path or "/sse", message_path="/messages/")
    else:
        app = server.streamable_http_app(streamable_http_path=args.path or "/mcp")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(64)
    config = uvicorn.Config(
        _guard(app, token, required),
        log_level="warning",
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    uv = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(uv.serve(sockets=[sock]))
        while not uv.started and not task.done():  # noqa: ASYNC110 (uvicorn only has a flag)
            await asyncio.sleep(0.01)
        if uv.started:
            print(f"{_READY} {sock.getsockname()[1]}", flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    _main()
