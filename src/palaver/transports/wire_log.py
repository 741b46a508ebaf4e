"""An append-only log of every server event sent (one JSON text per line), for debugging and tests."""

from __future__ import annotations

from typing import TextIO


class WireLog:
    def __init__(self, path: str) -> None:
        self._file: TextIO = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives with the app

    def write(self, event_json: str) -> None:
        self._file.write(event_json + "\n")

    def close(self) -> None:
        self._file.close()
