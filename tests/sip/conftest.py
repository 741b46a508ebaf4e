from __future__ import annotations

from pathlib import Path

import pytest

TORTURE = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "rfc4475"
FOLDERS = ("valid", "invalid", "application", "transaction", "compat")


def torture_dir() -> Path:
    if not (TORTURE / "valid").is_dir():
        pytest.fail(
            f"RFC 4475 torture messages missing: expected {TORTURE}"
            " (../shared/testdata/rfc4475 beside the clone)",
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
