"""The egress policy of a real ``palaver serve``, driven with the stock openai SDK.

A server bound beyond loopback (here ``0.0.0.0``, with a key; the tests reach it on 127.0.0.1)
connects to public addresses only unless ``PALAVER_MCP_ALLOW`` says otherwise. Loopback
listeners count every connection they accept, so "refused" means "never connected". The
loopback-only default (any URL) is what tests/e2e/test_mcp.py runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.support.mcp_server import McpTestServer
from tests.support.server import PalaverServer

pytestmark = pytest.mark.e2e

KEY = "egress-test-key"
#: Fast startup: no model is needed to list MCP tools.
QUICK = {
    "PALAVER_STT": "null",
    "PALAVER_VAD": "energy",
    "PALAVER_API_KEY": KEY,
    "PALAVER_SIP_ENABLED": "false",
}


class Listener:
    """A TCP listener on 127.0.0.1 (its own thread) counting accepted connections and keeping requests."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = 0
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listener:{self.port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(2)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                self.requests.append(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def exposed() -> Iterator[PalaverServer]:
    """Bound to 0.0.0.0 with a key and no PALAVER_MCP_ALLOW: public addresses only."""
    server = PalaverServer({**QUICK, "PALAVER_MCP_ALLOW": None}, host="0.0.0.0")
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def restaurant() -> Iterator[McpTestServer]:
    with McpTestServer() as server:
        yield server


@pytest.fixture(scope="module")
def allowing(restaurant: McpTestServer, listener: Listener) -> Iterator[PalaverServer]:
    """Bound to 0.0.0.0 and allowed the MCP test server and the listener by host:port."""
    assert restaurant.port is not None
    allow = f"127.0.0.1:{restaurant.port}, 127.0.0.1:{listener.port}"
    server = PalaverServer({**QUICK, "PALAVER_MCP_ALLOW": allow}, host="0.0.0.0")
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@contextlib.asynccontextmanager
async def session(server: PalaverServer) -> AsyncIterator[Any]:
    client = AsyncOpenAI(api_key=KEY, base_url=server.http_url + "/v1", websocket_base_url=server.ws_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        created = await asyncio.wait_for(conn.recv(), 20)
        assert created.type == "session.created"
        yield conn


def mcp_tool(label: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": label, "server_url": url, "require_approval": "never", **extra}


async def list_tools(conn: Any, tools: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """session.update with the tools; every event up to each server's item done, by server_label."""
    await conn.session.update(session={"type": "realtime", "output_modalities": ["text"], "tools": tools})
    events: list[Any] = []
    async with asyncio.timeout(30):
        while sum(1 for e in events if e.type == "conversation.item.done") < len(tools):
            events.append(await conn.recv())
    labels: dict[str, str] = {}  # item id -> server label
    by_label: dict[str, list[Any]] = {tool["server_label"]: [] for tool in tools}
    pending: str | None = None
    for event in events:
        if event.type in ("conversation.item.added", "conversation.item.done"):
            labels[event.item.id] = event.item.server_label
            by_label[event.item.server_label].append(event)
        elif event.type.startswith("mcp_list_tools."):
            pending = labels[event.item_id]
            by_label[pending].append(event)
        elif event.type == "error":
            assert pending is not None, event
            by_label[pending].append(event)  # an error follows the failure it explains
    return by_label


# --- a server that faces a network ----------------------------------------------------------


async def test_loopback_and_private_urls_are_refused_and_never_connected(
    exposed: PalaverServer, listener: Listener
) -> None:
    port = listener.port
    refused = {
        "loopback": (f"http://127.0.0.1:{port}/mcp?api_key=SECRET", "127.0.0.1 is a loopback address"),
        "localhost": (f"http://localhost:{port}/mcp", "a loopback address"),
        "mapped": (
            f"http://[::ffff:127.0.0.1]:{port}/mcp",
            "an IPv4-mapped form of 127.0.0.1, a loopback address",
        ),
        "unspecified": (f"http://0.0.0.0:{port}/mcp", "0.0.0.0 is an unspecified address"),
        "private": ("http://10.0.0.5/mcp", "10.0.0.5 is a private address"),
        "private6": ("http://[fd00::5]/mcp", "fd00::5 is a private (unique local) address"),
        "metadata": ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        "linklocal6": ("http://[fe80::1]/mcp", "fe80::1 is a link-local address"),
        "cgnat": ("http://100.64.0.1/mcp", "100.64.0.1 is a shared (CGNAT) address"),
        "multicast": ("http://224.0.0.1/mcp", "224.0.0.1 is a multicast address"),
    }
    async with session(exposed) as conn:
        results = await list_tools(conn, [mcp_tool(label, url) for label, (url, _) in refused.items()])
    for label, (_, rule) in refused.items():
        types = [e.type for e in results[label]]
        assert types == [
            "conversation.item.added",
            "mcp_list_tools.in_progress",
            "mcp_list_tools.failed",
            "error",
            "conversation.item.done",
        ], label
        error = results[label][3].error
        assert error.code == "invalid_value"
        assert error.message.startswith(f"MCP server {label!r}: server_url refused by the egress policy: ")
        assert rule in error.message and error.message.endswith("allow it with PALAVER_MCP_ALLOW"), error
        assert results[label][-1].item.tools == []
    await asyncio.sleep(0.2)
    assert listener.accepted == 0, listener.requests
    log = exposed.stderr_text()
    assert "public addresses only" in log
    assert "SECRET" not in log


async def test_ftp_and_other_schemes_are_refused(exposed: PalaverServer) -> None:
    async with session(exposed) as conn:
        results = await list_tools(conn, [mcp_tool("ftp", "ftp://mcp.example.com/mcp")])
    types = [e.type for e in results["ftp"]]
    assert "mcp_list_tools.failed" in types and "error" in types


# --- an explicit allow list ---------------------------------------------------------------


async def test_an_allowed_loopback_server_works(allowing: PalaverServer, restaurant: McpTestServer) -> None:
    async with session(allowing) as conn:
        results = await list_tools(conn, [mcp_tool("booking", restaurant.url)])
    types = [e.type for e in results["booking"]]
    assert types == [
        "conversation.item.added",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "conversation.item.done",
    ]
    assert "check_availability" in {tool.name for tool in results["booking"][-1].item.tools}
    assert "only what PALAVER_MCP_ALLOW lists" in allowing.stderr_text()


async def test_what_the_allow_list_does_not_name_is_refused(allowing: PalaverServer) -> None:
    unlisted = Listener()
    try:
        async with session(allowing) as conn:
            results = await list_tools(
                conn,
                [
                    mcp_tool("other_port", f"http://127.0.0.1:{unlisted.port}/mcp"),
                    mcp_tool("public", "https://8.8.8.8/mcp"),
                ],
            )
        message = next(e for e in results["other_port"] if e.type == "error").error.message
        assert f"127.0.0.1 port {unlisted.port} is not listed in PALAVER_MCP_ALLOW" in message
        # The list replaces the default: a public address it does not list is refused too.
        message = next(e for e in results["public"] if e.type == "error").error.message
        assert "8.8.8.8 port 443 is not listed in PALAVER_MCP_ALLOW; add it to PALAVER_MCP_ALLOW" in message
        await asyncio.sleep(0.2)
        assert unlisted.accepted == 0
    finally:
        unlisted.close()


@pytest.mark.parametrize("header", ["Cookie", "Host", "Connection", "Proxy-Authorization"])
async def test_a_forbidden_header_never_reaches_the_mcp_server(
    allowing: PalaverServer, listener: Listener, header: str
) -> None:
    before = listener.accepted
    async with session(allowing) as conn:
        tool = mcp_tool("tenant", f"http://127.0.0.1:{listener.port}/mcp", headers={header: "evil=1"})
        results = await list_tools(conn, [tool])
    types = [e.type for e in results["tenant"]]
    assert "mcp_list_tools.failed" in types
    message = next(e for e in results["tenant"] if e.type == "error").error.message
    assert f"header {header!r} is not forwarded" in message
    await asyncio.sleep(0.2)
    assert listener.accepted == before


async def test_explicit_headers_and_authorization_are_what_is_sent(
    allowing: PalaverServer, listener: Listener
) -> None:
    """The positive control of the test above: the listener hears the tool's own headers only."""
    before = len(listener.requests)
    async with session(allowing) as conn:
        tool = mcp_tool(
            "tenant",
            f"http://127.0.0.1:{listener.port}/mcp",
            headers={"X-Tenant": "palaver"},
            authorization="tok",
        )
        results = await list_tools(conn, [tool])
    assert "mcp_list_tools.failed" in [e.type for e in results["tenant"]]  # the listener answers 500
    assert "error" not in [e.type for e in results["tenant"]]  # a server failure, not a refusal
    head = listener.requests[before].decode(errors="replace").lower()
    assert "\r\nx-tenant: palaver\r\n" in head and "\r\nauthorization: bearer tok\r\n" in head
    assert "cookie" not in head and f"\r\nhost: 127.0.0.1:{listener.port}\r\n" in head


# --- startup ------------------------------------------------------------------------------


def test_a_bad_allow_entry_stops_the_server_at_startup() -> None:
    env = {**os.environ, **QUICK, "PALAVER_MCP_ALLOW": "10.0.0.0/8, 10.0.0.5/8", "PALAVER_WIRE_LOG": ""}
    env.pop("PALAVER_WIRE_LOG")
    done = subprocess.run(
        [sys.executable, "-m", "palaver", "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "PALAVER_MCP_ALLOW: entry '10.0.0.5/8' has host bits set; did you mean 10.0.0.0/8?" in done.stderr
