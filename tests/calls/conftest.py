"""Fixtures for the call tests: cheap backends (null recogniser, energy VAD, echo brain)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from palaver.backends.registry import Backends, build_backends
from palaver.config import Settings


@pytest.fixture(scope="module")
def backends() -> Iterator[Backends]:
    loaded = build_backends(Settings(stt="null", vad="energy"))
    try:
        yield loaded
    finally:
        loaded.close()
