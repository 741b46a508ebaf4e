"""Validate what the server put on the wire against the stock ``openai`` SDK's types.

``validate_server_events`` checks each line of a wire log (one server event as JSON per
line) against the ``openai.types.realtime`` class for its ``type``, in pydantic strict mode,
and also rejects fields the SDK does not know (its models allow extras silently) and
repeated ``event_id``s. ``WireLogTail`` reads the lines appended to a log since last asked.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydantic
from openai.types.realtime import realtime_server_event

__all__ = ["EVENT_CLASSES", "WireLogTail", "validate_server_events"]


def _event_classes() -> dict[str, type[pydantic.BaseModel]]:
    """Map each event ``type`` literal to its class, from the ``RealtimeServerEvent`` union.

    pydantic ignores the SDK's ``PropertyInfo(discriminator=...)``, so validating against the
    union tries every member and buries the real error; we discriminate by hand instead.
    """
    union = typing.get_args(realtime_server_event.RealtimeServerEvent)[0]
    classes: dict[str, type[pydantic.BaseModel]] = {}
    for cls in typing.get_args(union):
        for literal in typing.get_args(cls.model_fields["type"].annotation):
            classes[literal] = cls
    return classes


EVENT_CLASSES: dict[str, type[pydantic.BaseModel]] = _event_classes()
_ADAPTERS = {name: pydantic.TypeAdapter(cls) for name, cls in EVENT_CLASSES.items()}


def _loc(parts: Iterable[int | str]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<event>"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, pydantic.BaseModel) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Fields OpenAI itself sends that the SDK's models do not declare (reference §2.6, §4.5):
#: the session object's ``object``/``id``/``expires_at``, and ``obfuscation`` on transcript deltas.
DOCUMENTED_EXTRAS = frozenset(
    {"session.object", "session.id", "session.expires_at", "obfuscation"},
)


def _extras(value: Any, path: tuple[int | str, ...] = ()) -> list[str]:
    """Dotted paths of fields the SDK's models do not declare."""
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        for key in value.__pydantic_extra__ or {}:
            found.append(_loc((*path, key)))
        for name in type(value).model_fields:
            found += _extras(getattr(value, name), (*path, name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += _extras(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _extras(item, (*path, str(key)))
    return found


def validate_server_events(lines: Iterable[str], *, allow_extra: bool = False) -> list[str]:
    """Human-readable failures for the given wire-log lines; empty when all are valid."""
    failures: list[str] = []
    seen_ids: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        where = f"line {number}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            failures.append(f"{where}: not JSON ({exc}): {line[:120]!r}")
            continue
        if not isinstance(obj, dict):
            failures.append(f"{where}: not a JSON object: {line[:120]!r}")
            continue
        kind = obj.get("type")
        where = f"{where} ({kind}, event_id={obj.get('event_id')!r})"
        adapter = _ADAPTERS.get(kind) if isinstance(kind, str) else None
        if adapter is None:
            failures.append(f"{where}: unknown server event type {kind!r}")
            continue
        try:
            event = adapter.validate_python(obj, strict=True)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                got = f" (got {_short(error['input'])})" if error["type"] != "missing" else ""
                failures.append(f"{where}: {_loc(error['loc'])}: {error['msg']}{got}")
            continue
        if not allow_extra:
            for extra in _extras(event):
                if extra in DOCUMENTED_EXTRAS:
                    continue
                failures.append(f"{where}: {extra}: field not in {type(event).__name__}")
        event_id = obj.get("event_id")  # the DTMF event has none
        if event_id is not None and event_id in seen_ids:
            failures.append(f"{where}: event_id repeats line {seen_ids[event_id]}")
        elif event_id is not None:
            seen_ids[event_id] = number
    return failures


class WireLogTail:
    """Reads complete lines appended to a file since the previous call.

    Starts at the file's current end (``from_start=True``: at its beginning); a missing
    file reads as empty. A trailing line without its newline is left for the next call.
    """

    def __init__(self, path: str | os.PathLike[str], *, from_start: bool = False) -> None:
        self.path = Path(path)
        self.offset = 0 if from_start else self._size()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def new_lines(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                if os.fstat(f.fileno()).st_size < self.offset:  # truncated or replaced
                    self.offset = 0
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [raw.decode("utf-8", errors="replace") for raw in data[:end].split(b"\n")[:-1]]
