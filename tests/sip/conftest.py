from __future__ import annotations

from pathlib import Path

import pytest

#: RFC 4475's test vectors, byte-exact, carried by the repository (see its README for the source).
TORTURE = Path(__file__).resolve().parents[1] / "data" / "rfc4475"
FOLDERS = ("valid", "invalid", "application", "transaction", "compat")


def torture_dir() -> Path:
    if not (TORTURE / "valid").is_dir():
        pytest.fail(
            f"RFC 4475 torture messages missing: expected {TORTURE}"
            " (tests/data/rfc4475 is part of the repository: is the checkout complete?)",
            pytrace=False,
        )
    return TORTURE


def load(folder: str, name: str) -> bytes:
    return (torture_dir() / folder / f"{name}.dat").read_bytes()


def names(folder: str) -> list[str]:
    # Collected at import time: a missing folder yields one placeholder that fails loudly in the test.
    d = TORTURE / folder
    found = sorted(p.stem for p in d.glob("*.dat")) if d.is_dir() else []
    return found or ["<missing>"]
