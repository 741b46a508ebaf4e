"""Safe exposure against the real ``palaver serve``: a keyless server beyond loopback refuses to start.

Bound to anything but loopback with no ``PALAVER_API_KEY``, the server exits at once naming both
ways out; ``PALAVER_ALLOW_OPEN=true`` serves open on purpose and says so loudly. An empty key is an
error, not "open". A keyed server keeps its API docs (``/openapi.json``, ``/docs``, ``/redoc``) off.
Wildcard binds are reached on 127.0.0.1 only: no traffic leaves loopback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

import pytest

from tests.e2e.realtime_client import collect_until, connect, of_type
from tests.support.server import PalaverServer, free_port, free_sip_port, running_server

pytestmark = pytest.mark.e2e

DOC_ROUTES = ("/openapi.json", "/docs", "/redoc")


def _serve(host: str, env: Mapping[str, str | None]) -> tuple[int, str, int]:
    """Run ``palaver serve --host HOST`` expecting it to exit by itself; (exit code, output, port)."""
    port = free_port()
    merged = {**os.environ, "PALAVER_SIP_PORT": str(free_sip_port())}
    merged.pop("PALAVER_API_KEY", None)
    merged.pop("PALAVER_ALLOW_OPEN", None)
    for name, value in env.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    proc = subprocess.run(
        [sys.executable, "-m", "palaver", "serve", "--host", host, "--port", str(port)],
        env=merged,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr, port


def _nothing_listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_keyless_server_on_a_non_loopback_address_refuses_to_start(host: str) -> None:
    code, output, port = _serve(host, {})
    assert code == 2, output
    assert f"refusing to serve {host}:{port} without a key" in output
    assert "PALAVER_API_KEY" in output and "PALAVER_ALLOW_OPEN=true" in output
    assert "Traceback" not in output
    assert _nothing_listens(port)


def test_an_empty_key_is_an_error_not_an_open_server() -> None:
    code, output, port = _serve("127.0.0.1", {"PALAVER_API_KEY": ""})
    assert code == 2, output
    assert "PALAVER_API_KEY is set but empty" in output
    assert _nothing_listens(port)


async def test_allow_open_serves_everyone_on_purpose_and_says_so_loudly() -> None:
    server = PalaverServer({"PALAVER_ALLOW_OPEN": "true", "PALAVER_API_KEY": None}, host="0.0.0.0")
    server.start()
    try:
        async with connect(server, output_modalities=["text"]) as conn:
            await conn.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
            )
            await conn.response.create()
            events = await collect_until(conn, "response.done")
        assert of_type(events, "response.done")[0].response.status == "completed"
        log = server.stderr_text()
        assert "PALAVER_ALLOW_OPEN=true and no PALAVER_API_KEY: the server is OPEN on 0.0.0.0" in log
        assert " WARNING " in log.split("the server is OPEN on 0.0.0.0")[0].splitlines()[-1]
    finally:
        server.stop()
        server.cleanup()


def _status(url: str, headers: Mapping[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_keyed_server_keeps_its_api_docs_off() -> None:
    key = "sk-exposure-test"
    with running_server({"PALAVER_API_KEY": key}) as server:
        for route in DOC_ROUTES:
            assert _status(server.http_url + route) == 404, route
            assert _status(server.http_url + route, {"Authorization": f"Bearer {key}"}) == 404, route
        assert _status(server.http_url + "/healthz") == 200


def test_an_open_loopback_server_shows_its_api_docs(palaver_server) -> None:
    for route in DOC_ROUTES:
        assert _status(palaver_server.http_url + route) == 200, route
