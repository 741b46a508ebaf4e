"""PalaverServer's process handling, proven on a tiny stand-in ``palaver`` package.

The stand-in is put first on PYTHONPATH, so ``python -m palaver serve ...`` runs it instead
of the real server: these tests pin the launcher, not the server.
"""

from __future__ import annotations

import json
import signal
import textwrap
import urllib.request
from pathlib import Path

import pytest

from tests.support.server import PalaverServer

pytest_plugins = ("pytester",)

FAKE_MAIN = textwrap.dedent(
    """
    import http.server, json, os, signal, sys, time

    mode = os.environ.get("FAKE_MODE", "ok")
    if mode == "die":
        print("boom: cannot start", file=sys.stderr)
        sys.exit(3)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = int(sys.argv[sys.argv.index("--port") + 1])
    env = {k: v for k, v in os.environ.items() if k.startswith(("PALAVER_", "FAKE_"))}
    print("FAKE-INFO", json.dumps({"argv": sys.argv[1:], "env": env, "cwd": os.getcwd()}), flush=True)
    if mode == "slow":
        time.sleep(30)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    print("fake palaver listening", flush=True)
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    package = tmp_path / "fake" / "palaver"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(FAKE_MAIN)
    monkeypatch.setenv("PALAVER_API_KEY", "from-the-shell")
    return {"PYTHONPATH": str(package.parent), "PALAVER_LLM_MODEL": "scripted", "PALAVER_API_KEY": None}


def test_starts_waits_for_health_and_stops(fake_env: dict[str, str | None]) -> None:
    server = PalaverServer(fake_env)
    try:
        server.start(timeout=20)
        assert server.is_running()
        assert server.http_url == f"http://127.0.0.1:{server.port}"
        assert server.ws_base_url == f"ws://127.0.0.1:{server.port}/v1"
        with urllib.request.urlopen(server.http_url + "/healthz", timeout=5) as response:
            assert response.status == 200
        (info,) = [line for line in server.stderr_text().splitlines() if line.startswith("FAKE-INFO ")]
        seen = json.loads(info.removeprefix("FAKE-INFO "))
        assert seen["argv"] == ["serve", "--host", "127.0.0.1", "--port", str(server.port)]
        assert seen["env"]["PALAVER_WIRE_LOG"] == str(server.wire_log_path)
        assert seen["env"]["PALAVER_LLM_MODEL"] == "scripted"
        assert "PALAVER_API_KEY" not in seen["env"]  # None removes an inherited variable
        assert server in PalaverServer.started()
        assert server.wire_log_path.exists() and seen["cwd"] == str(server.wire_log_path.parent)
        with server.wire_log_path.open("a") as log:
            log.write('{"x": 1}\n')
        assert server.wire_tail.new_lines() == ['{"x": 1}']
        assert "fake palaver listening" in server.stderr_text()
    finally:
        code = server.stop()
    assert code == 0
    assert not server.is_running()
    assert server.stop() == 0  # idempotent
    server.cleanup()
    assert not server.wire_log_path.exists()
    assert server not in PalaverServer.started()


def test_reports_output_when_the_server_dies(fake_env: dict[str, str | None]) -> None:
    server = PalaverServer({**fake_env, "FAKE_MODE": "die"})
    with pytest.raises(RuntimeError, match=r"exited with code 3(.|\n)*boom: cannot start"):
        server.start(timeout=20)
    server.cleanup()


def test_gives_up_waiting_and_kills(fake_env: dict[str, str | None]) -> None:
    server = PalaverServer({**fake_env, "FAKE_MODE": "slow"})
    with pytest.raises(RuntimeError, match="not healthy"):
        server.start(timeout=1)
    assert not server.is_running()
    server.cleanup()


def test_sigkills_a_server_that_ignores_sigterm(fake_env: dict[str, str | None]) -> None:
    server = PalaverServer({**fake_env, "FAKE_MODE": "stubborn"}).start(timeout=20)
    assert server.stop(timeout=0.5) == -signal.SIGKILL
    server.cleanup()


GUARDED_TEST = """
import os
import pytest
from tests.conftest import _validate_wire_events, pytest_collection_modifyitems  # noqa: F401
from tests.support.server import PalaverServer

VALID = '{"type": "output_audio_buffer.started", "event_id": "event_1", "response_id": "resp_1"}'
INVALID = '{"type": "response.content_part.added", "event_id": "event_2"}'

@pytest.mark.e2e
@pytest.mark.parametrize("line", [VALID, INVALID], ids=["valid", "invalid"])
def test_server_sends(line):
    env = {"PYTHONPATH": os.environ["FAKE_PYTHONPATH"]}
    with PalaverServer(env) as server:
        with server.wire_log_path.open("a") as log:  # as if the server had sent it
            log.write(line + "\\n")

def test_unguarded_tests_are_left_alone():
    pass
"""


def test_the_wire_guard_fails_an_e2e_test_that_sent_an_invalid_event(
    pytester: pytest.Pytester, fake_env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PYTHONPATH", str(fake_env["PYTHONPATH"]))
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    e2e: end to end\n"
    )
    pytester.makepyfile(test_guarded=GUARDED_TEST)
    before = PalaverServer.started()
    try:
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    finally:
        for server in PalaverServer.started():
            if server not in before:
                server.cleanup()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_server_sends[[]invalid[]]*",
            "*5 server event problem(s) against openai.types.realtime:*",
            "*(response.content_part.added, event_id='event_2'): content_index: Field required*",
        ]
    )
