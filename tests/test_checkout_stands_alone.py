"""The repository stands alone: nothing under tests/, bench/ or scripts/ reads outside the checkout.

A user who clones the repository gets only what it carries, so a test that reads a file beside
the clone (``../shared/...``), climbs above the repository root with ``Path(__file__).parents``,
or names this workplace's folders fails for them. This test reads every text file of those
folders and flags the three shapes such a reference takes:

- ``Path(__file__)`` followed by ``.parents[N]`` / ``.parent`` steps that climb above the root;
- a run of ``../`` (or a trailing ``/..`` after ``dirname``) longer than the file's depth;
- a name of a folder outside the checkout (``/work/``, ``shared/testdata``, ``/ "shared"``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("tests", "bench", "scripts")
TEXT_SUFFIXES = {".py", ".sh", ".xml", ".toml", ".json", ".md", ".cfg", ".txt", ""}

_FILE_CLIMB = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?((?:\.parents\[\d+\]|\.parent)+)")
_STEP = re.compile(r"\.parents\[(\d+)\]|\.parent")
_DOTDOT_RUN = re.compile(r"(?:\.\./)+|(?:/\.\.)+(?=[\"'\s)/]|$)")
_OUTSIDE_NAMES = re.compile(r"/work/|shared/testdata|/\s*[\"']shared[\"']|[\"']shared[\"']\s*/|\.\./shared")


def _levels_up(chain: str) -> int:
    """How many folders above the file's own folder a ``.parents[N]``/``.parent`` chain reaches."""
    up = 0
    for match in _STEP.finditer(chain):
        up += int(match.group(1)) + 1 if match.group(1) is not None else 1
    return up - 1  # Path(__file__).parent is the file's own folder: 0 levels up


def outside_references(relative: Path, text: str) -> list[str]:
    """Each reference in ``text`` (the file at ``relative`` from the root) to a path outside the root."""
    depth = len(relative.parts) - 1  # folders between the root and the file
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _FILE_CLIMB.finditer(line):
            if _levels_up(match.group(1)) > depth:
                found.append(f"{relative}:{number}: climbs above the checkout: {match.group(0)}")
        for match in _DOTDOT_RUN.finditer(line):
            steps = match.group(0).count("..")
            if steps > depth:
                found.append(f"{relative}:{number}: {steps} '..' steps from depth {depth}: {line.strip()}")
        found.extend(
            f"{relative}:{number}: names a folder outside the checkout: {match.group(0)}"
            for match in _OUTSIDE_NAMES.finditer(line)
        )
    return found


def _files() -> list[Path]:
    this = Path(__file__).resolve()
    files: list[Path] = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or path.resolve() == this or "__pycache__" in path.parts:
                continue
            if path.suffix in TEXT_SUFFIXES and "data" not in path.relative_to(ROOT).parts[:2]:
                files.append(path)
    return files


def test_no_file_under_tests_bench_or_scripts_refers_outside_the_checkout() -> None:
    files = _files()
    assert len(files) > 50, f"expected the project's test, bench and script files, found {len(files)}"
    problems: list[str] = []
    for path in files:
        text = path.read_text(errors="replace")
        problems.extend(outside_references(path.relative_to(ROOT), text))
    assert not problems, "files that read outside the checkout:\n" + "\n".join(problems)


# The samples are built from pieces so that this file does not flag itself when copied elsewhere.
_UP = "../"


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("tests/sip/conftest.py", 'TORTURE = Path(__file__).resolve().parents[2].parent / "x"'),
        ("tests/sip/conftest.py", "TORTURE = Path(__file__).parents[3]"),
        ("tests/x.py", "p = Path(__file__).parent.parent.parent"),
        ("tests/x.py", f'open("{_UP * 2}data.bin")'),
        ("scripts/test", 'ROOT="$(dirname "$0")/../.."'),
        ("bench/b.py", "DATA = ROOT / " + '"sha' + 'red" / "testdata"'),
        ("bench/b.py", 'p = "/wo' + 'rk/shared/x"'),
    ],
)
def test_the_check_catches_references_outside_the_checkout(relative: str, text: str) -> None:
    assert outside_references(Path(relative), text)


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("tests/sip/conftest.py", 'TORTURE = Path(__file__).resolve().parents[1] / "data" / "rfc4475"'),
        ("tests/sip/conftest.py", "ROOT = Path(__file__).resolve().parents[2]"),
        ("tests/x.py", "p = Path(__file__).parent.parent"),
        ("scripts/test", 'ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"'),
        ("bench/b.py", 'chromium = "/usr/bin/chromium"'),
    ],
)
def test_the_check_lets_references_inside_the_checkout_pass(relative: str, text: str) -> None:
    assert outside_references(Path(relative), text) == []
