"""Function names under which the model sees MCP tools: ``mcp__<server_label>__<tool>``.

OpenAI function names allow ``[a-zA-Z0-9_-]`` and at most 64 characters. A (server, tool)
pair whose plain name is valid keeps it; otherwise (characters replaced, or too long) the
name is cut and ends in ``_`` plus 8 hex digits of a SHA-256 of the exact pair. Pairs whose
names would still clash all take the hashed form (with longer hashes if ever needed), so
the mapping is one-to-one; a name depends only on its own pair unless such a clash exists.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable

__all__ = ["MAX_FUNCTION_NAME", "PREFIX", "function_names"]

PREFIX = "mcp__"
MAX_FUNCTION_NAME = 64
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")

Pair = tuple[str, str]


def _plain(pair: Pair) -> tuple[str, bool]:
    label, tool = pair
    name = f"{PREFIX}{_INVALID.sub('_', label)}__{_INVALID.sub('_', tool)}"
    exact = not _INVALID.search(label) and not _INVALID.search(tool) and len(name) <= MAX_FUNCTION_NAME
    return name, exact


def _hashed(pair: Pair, digits: int) -> str:
    name, _ = _plain(pair)
    digest = hashlib.sha256(f"{pair[0]}\x00{pair[1]}".encode()).hexdigest()[:digits]
    return f"{name[: MAX_FUNCTION_NAME - digits - 1]}_{digest}"


def function_names(pairs: Iterable[Pair]) -> dict[Pair, str]:
    """A one-to-one map from (server_label, tool_name) to a valid function name."""
    names: dict[Pair, str] = {}
    for pair in sorted(set(pairs)):
        name, exact = _plain(pair)
        names[pair] = name if exact else _hashed(pair, 8)
    for digits in (8, 16, 32, 48):
        owners: defaultdict[str, list[Pair]] = defaultdict(list)
        for pair, name in names.items():
            owners[name].append(pair)
        clashing = [pair for group in owners.values() if len(group) > 1 for pair in group]
        if not clashing:
            break
        for pair in clashing:
            names[pair] = _hashed(pair, digits)
    return names
