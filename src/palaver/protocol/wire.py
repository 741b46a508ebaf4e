"""Base class and serialisation rules shared by every wire model.

Serialisation rule: a field typed ``Omittable[X]`` is left out of the JSON while it is
``None`` (optional extras such as ``obfuscation`` or ``logprobs``); every other field is
always written, so ``None`` goes out as ``null`` (``previous_item_id``, ``usage``,
``status_details`` …). Audio bytes of content parts follow a third rule, see ``items.py``.

Unions mixing JSON kinds (``"auto"`` or an object) are tagged with ``json_kind`` or
``type_or_kind`` so that a validation error names one branch, not every branch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

#: Tags ``json_kind`` can return; they never name a wire value.
JSON_KINDS = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})


def _is_none(value: object) -> bool:
    return value is None


Omittable = Annotated[T | None, Field(exclude_if=_is_none)]
"""An optional field that is omitted from the JSON (not sent as ``null``) while unset."""


class WireModel(BaseModel):
    """A JSON object of the protocol: unknown fields are rejected, instances stay mutable."""

    model_config = ConfigDict(extra="forbid")

    #: Serialisation context passed by ``to_json``/``to_dict`` (see ``items.py``).
    wire_context: ClassVar[dict[str, Any] | None] = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of this model."""
        return self.model_dump(mode="json", context=self.wire_context)

    def to_json(self) -> str:
        """Compact JSON text of this model."""
        return self.model_dump_json(context=self.wire_context)


def json_type_name(value: object) -> str:
    """The JSON type name of a decoded JSON value (``null``, ``boolean``, ``object`` …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def json_kind(value: object) -> str:
    """Union discriminator by JSON kind; integers count as ``number``."""
    kind = json_type_name(value)
    return "number" if kind == "integer" else kind


def type_or_kind(default: str | None = None) -> Callable[[Any], str | None]:
    """Union discriminator: an object's ``type`` (or ``default``), else the JSON kind."""

    def discriminate(value: object) -> str | None:
        if isinstance(value, dict):
            tag = value.get("type", default)
            return tag if isinstance(tag, str) else None
        if isinstance(value, BaseModel):
            tag = getattr(value, "type", default)
            return tag if isinstance(tag, str) else None
        return json_kind(value)

    return discriminate
