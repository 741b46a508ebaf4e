"""Run the real palaver server as a subprocess for end-to-end tests.

    server = PalaverServer({"PALAVER_LLM_BASE_URL": llm.base_url}).start()
    try:
        ...  # connect to server.ws_base_url / server.http_url
    finally:
        server.stop()

The server writes every event it sends to ``server.wire_log_path`` (``PALAVER_WIRE_LOG``);
its stdout and stderr go to one log file, read back with ``stderr_text()``. ``env`` is
merged over ``os.environ``; a value of ``None`` removes that variable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.support.wire import WireLogTail

__all__ = ["PalaverServer", "free_port", "free_sip_port", "running_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_sip_port() -> int:
    """A port on 127.0.0.1 free a moment ago for UDP and TCP, with the next one free for TLS."""
    for _ in range(50):
        port = free_port()
        if port >= 65535:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for kind, offset in ((socket.SOCK_DGRAM, 0), (socket.SOCK_STREAM, 1)):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, kind))
                    sock.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError("no free SIP port pair on 127.0.0.1")


_STARTED: list[PalaverServer] = []


class PalaverServer:
    """``python -m palaver serve`` on 127.0.0.1, started and stopped by the test session.

    Every instance started in this process is listed by ``PalaverServer.started()`` and has
    a ``wire_tail`` over its wire log, which the wire guard in ``tests/conftest.py`` reads.
    """

    def __init__(
        self, env: Mapping[str, str | None] | None = None, port: int | None = None, host: str = "127.0.0.1"
    ) -> None:
        #: The address it binds (``--host``); clients always reach it on 127.0.0.1, which a wildcard
        #: bind (``0.0.0.0``) includes.
        self.host = host
        self.port = port if port is not None else free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="palaver-e2e-"))
        self.wire_log_path = self._dir / "wire.jsonl"
        self.output_path = self._dir / "server.log"
        self.env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self.sip_port = 0  # known once started
        self.wire_tail = WireLogTail(self.wire_log_path, from_start=True)

    @classmethod
    def started(cls) -> list[PalaverServer]:
        return list(_STARTED)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stderr_text(self) -> str:
        """Everything the server printed so far (stdout and stderr interleaved)."""
        try:
            return self.output_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 30.0) -> PalaverServer:
        if self._proc is not None:
            raise RuntimeError("PalaverServer already started")
        env = {
            **os.environ,
            "PALAVER_WIRE_LOG": str(self.wire_log_path),
            "PYTHONUNBUFFERED": "1",
            # Every server takes phone calls, each on its own ports (never the shared 5060).
            "PALAVER_SIP_PORT": str(free_sip_port()),
        }
        for name, value in self.env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.sip_port = int(env.get("PALAVER_SIP_PORT") or 5060)
        self.wire_log_path = Path(env["PALAVER_WIRE_LOG"])
        self.wire_log_path.touch()
        self.wire_tail = WireLogTail(self.wire_log_path)  # from its current end
        command = [sys.executable, "-m", "palaver", "serve", "--host", self.host, "--port", str(self.port)]
        with self.output_path.open("wb") as output:
            self._proc = subprocess.Popen(
                command,
                env=env,
                cwd=self._dir,  # relative data paths land in the temporary directory
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() can reap helpers too
            )
        _STARTED.append(self)
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"palaver server exited with code {code} before it was healthy; output:\n"
                    + self.stderr_text()
                )
            try:
                with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.1)
        raise RuntimeError(
            f"palaver server not healthy at {self.http_url}/healthz within {timeout:.0f}s "
            f"(last: {last_error}); output:\n" + self.stderr_text()
        )

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL (the whole process group). Idempotent."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(proc.pid)
                proc.wait(timeout)
        self._kill_group(proc.pid)  # leftovers such as worker processes
        return proc.returncode

    @staticmethod
    def _kill_group(pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def cleanup(self) -> None:
        """Stop, remove the temporary directory holding the logs, forget this server."""
        self.stop()
        if self in _STARTED:
            _STARTED.remove(self)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PalaverServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_server(env: Mapping[str, str | None]) -> Iterator[PalaverServer]:
    """A started server, stopped and cleaned up on exit (for fixtures)."""
    server = PalaverServer(env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.cleanup()
