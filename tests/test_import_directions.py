"""Imports between Palaver's top-level packages point one way: down the layers.

    cli → server → transports → calls → session → engine, tools → backends, turn
        → audio, protocol, sip, rtp, sdp, egress, limits → config, redact, errors

A module may import its own package and anything in a lower layer. ``KNOWN_UPWARD`` lists the
upward imports that exist today (issue 10 removes them with one composition root); the test
fails on any new upward import, and on a listed one that is gone (take it off the list), so the
list can only shrink. A new top-level module must be given a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "palaver"

#: The layer of each top-level package or module of ``palaver`` (higher imports lower).
LAYER = {
    "errors": 0,
    "__version__": 0,  # from palaver import __version__ (palaver/__init__.py)
    "config": 0,
    "redact": 0,
    "audio": 1,
    "protocol": 1,
    "sip": 1,
    "rtp": 1,
    "sdp": 1,
    "egress": 1,
    "limits": 1,
    "backends": 2,
    "turn": 2,
    "tools": 3,
    "engine": 3,
    "session": 4,
    "calls": 5,
    "transports": 6,
    "server": 7,
    "cli": 8,
    "__main__": 8,
}

#: Upward imports of today, (module path under src/palaver, the package it reaches up to).
KNOWN_UPWARD = {
    ("backends/registry.py", "session"),
    ("backends/registry.py", "tools"),
    ("calls/fanout.py", "transports"),
    ("calls/rest.py", "server"),
    ("calls/sip_gateway.py", "server"),
    ("calls/sip_gateway.py", "transports"),
    ("calls/switchboard.py", "transports"),
    ("transports/websocket.py", "server"),
}


def _imported_packages(tree: ast.AST) -> set[str]:
    """The top-level ``palaver`` packages a module imports, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            if node.module == "palaver":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("palaver."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("palaver."))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).as_posix() != "__init__.py")


def upward_imports() -> set[tuple[str, str]]:
    upward: set[tuple[str, str]] = set()
    for path in _modules():
        relative = path.relative_to(ROOT)
        own = relative.parts[0].removesuffix(".py")
        for target in _imported_packages(ast.parse(path.read_text())):
            if target != own and LAYER[target] > LAYER[own]:
                upward.add((relative.as_posix(), target))
    return upward


def test_every_top_level_package_has_a_layer() -> None:
    tops = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in _modules()}
    imported = {t for p in _modules() for t in _imported_packages(ast.parse(p.read_text()))}
    assert tops | imported <= set(LAYER), f"give these a layer: {sorted((tops | imported) - set(LAYER))}"


def test_no_new_upward_import() -> None:
    new = upward_imports() - KNOWN_UPWARD
    listed = "\n".join(f"  {module} -> palaver.{target}" for module, target in sorted(new))
    assert not new, f"imports that point up the layers (invert them, or inject them):\n{listed}"


def test_the_known_upward_imports_are_still_there_or_off_the_list() -> None:
    gone = KNOWN_UPWARD - upward_imports()
    assert not gone, f"fixed upward imports: take them off KNOWN_UPWARD: {sorted(gone)}"


def test_the_check_sees_an_upward_import() -> None:
    tree = ast.parse("from palaver.server.app import create_app\nimport palaver.calls.call\n")
    assert _imported_packages(tree) == {"server", "calls"}
    root_names = ast.parse("from palaver import __version__, redact\n")
    assert _imported_packages(root_names) == {"__version__", "redact"}
