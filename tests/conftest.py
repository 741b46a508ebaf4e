"""Shared fixtures.

- ``scripted_llm`` (session): a started ``ScriptedLLM``, the sanctioned LLM test double.
- ``llm`` (function): that same ``ScriptedLLM``, its script and records reset for the test.
- ``palaver_server`` (session): the real server as a subprocess, talking to ``scripted_llm``.
- an autouse guard: every event a ``PalaverServer`` sends during a test that uses
  ``palaver_server`` or is marked ``e2e`` must validate against ``openai.types.realtime``
  (see ``tests.support.wire``), else the test errors at teardown.

Tests that use ``palaver_server`` are marked ``e2e`` automatically.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.scripted_llm import ScriptedLLM
from tests.support.server import PalaverServer
from tests.support.wire import WireLogTail, validate_server_events

SERVER_FIXTURE = "palaver_server"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURE in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def scripted_llm() -> Iterator[ScriptedLLM]:
    llm = ScriptedLLM().start()
    try:
        yield llm
    finally:
        llm.stop()


@pytest.fixture
def llm(scripted_llm: ScriptedLLM) -> ScriptedLLM:
    scripted_llm.reset()
    return scripted_llm


@pytest.fixture(scope="session")
def palaver_server(scripted_llm: ScriptedLLM) -> Iterator[PalaverServer]:
    server = PalaverServer(
        {
            "PALAVER_LLM_BASE_URL": scripted_llm.base_url,
            "PALAVER_LLM_MODEL": "scripted",
            "PALAVER_LLM_API_KEY": "sk-scripted",
            "PALAVER_API_KEY": None,  # an open server, whatever the developer's shell says
        }
    )
    server.start()
    try:
        yield server
        _settle(server.wire_tail)
        late = _check(server, "(sent after the last test) ")
        assert not late, "\n".join(late)
    finally:
        server.stop()
        server.cleanup()


def _settle(tail: WireLogTail, quiet: float = 0.1, limit: float = 1.0) -> None:
    """Give a server a moment to log what it is still sending: wait until its wire log stops
    growing for ``quiet`` seconds, at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    size = -1
    while time.monotonic() < deadline:
        current = tail.path.stat().st_size if tail.path.exists() else 0
        if current == size:
            return
        size = current
        time.sleep(quiet)


def _check(server: PalaverServer, label: str) -> list[str]:
    failures = validate_server_events(server.wire_tail.new_lines())
    return [f"{label}[server :{server.port}] {failure}" for failure in failures]


@pytest.fixture(autouse=True)
def _validate_wire_events(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail an end-to-end test if any server sent an event the openai SDK's types reject.

    Guards tests that use ``palaver_server`` or are marked ``e2e``, and reads the wire log of
    every ``PalaverServer`` started in this process (the session's and a test's own).
    """
    uses_session_server = SERVER_FIXTURE in request.fixturenames
    if not uses_session_server and request.node.get_closest_marker("e2e") is None:
        yield
        return
    # Events logged between tests (late events of an earlier test) are checked here too.
    failures: list[str] = []
    for server in PalaverServer.started():
        failures += _check(server, "(sent before this test) ")
    yield
    for server in PalaverServer.started():
        if server.is_running():
            _settle(server.wire_tail)
        failures += _check(server, "")
    problems: list[str] = []
    if failures:
        shown = "\n  ".join(failures[:50])
        more = f"\n  ... and {len(failures) - 50} more" if len(failures) > 50 else ""
        problems.append(
            f"{len(failures)} server event problem(s) against openai.types.realtime:\n  {shown}{more}"
        )
    if uses_session_server:
        server = request.getfixturevalue(SERVER_FIXTURE)
        if not server.is_running():
            output = server.stderr_text()[-4000:]
            problems.append(f"the palaver server died during this test; its output:\n{output}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
