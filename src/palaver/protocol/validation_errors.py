"""Turn pydantic validation errors into OpenAI-style ``ProtocolError`` s.

Codes produced: ``missing_required_parameter``, ``unknown_parameter``, ``invalid_type``,
``invalid_value``, plus OpenAI's range codes ``integer_above_max_value``,
``integer_below_min_value``, ``decimal_above_max_value``, ``decimal_below_min_value``,
``string_above_max_length`` and ``array_above_max_length``; a string not matching a pattern is
``invalid_value`` with OpenAI's "string does not match pattern" message. ``param`` is a dotted path
with list indices in brackets, e.g. ``session.tools[0].name``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from .errors import ProtocolError
from .wire import JSON_KINDS, json_type_name

#: Error types a validator may raise itself (through ``custom_error``); passed through as is.
_CUSTOM_CODES = frozenset(
    {
        "missing_required_parameter",
        "unknown_parameter",
        "invalid_type",
        "invalid_value",
        "string_above_max_length",
        "object_above_max_properties",
    }
)

_EXPECTED_TYPE = {
    "string_type": "string",
    "int_type": "integer",
    "int_parsing": "integer",
    "int_from_float": "integer",
    "float_type": "number",
    "float_parsing": "number",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
    "list_type": "array",
    "tuple_type": "array",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
    "none_required": "null",
}

_BOUNDS = {
    "greater_than": ("gt", "below minimum", ">"),
    "greater_than_equal": ("ge", "below minimum", ">="),
    "less_than": ("lt", "above maximum", "<"),
    "less_than_equal": ("le", "above maximum", "<="),
}

_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def custom_error(code: str, message: str, *, at: str | None = None) -> PydanticCustomError:
    """An error for a validator to raise: ``code``/``message`` reach the client unchanged.

    ``message`` may contain ``{param}`` (replaced by the final dotted path); ``at`` is a
    path below the failing model, e.g. ``"content[1].type"``.
    """
    return PydanticCustomError(code, message, {"at": at} if at else None)


def translate_validation_error(
    exc: ValidationError, data: object, *, prefix: str = "", event_id: str | None = None
) -> ProtocolError:
    """The ``ProtocolError`` for the first error of ``exc``; ``data`` is the validated input."""
    error = exc.errors(include_url=False)[0]
    param = _param_path(error["loc"], data, error["type"], prefix)
    code, message, param = _describe(error, param)
    return ProtocolError(message, code=code, param=param or None, event_id=event_id)


def format_choices(values: Sequence[object]) -> str:
    """``'a', 'b', and 'c'`` — OpenAI's way of listing supported values."""
    quoted = [_quote(v) for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _quote(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    if not path or part.startswith("["):
        return f"{path}{part}"
    return f"{path}.{part}"


def _param_path(loc: tuple[int | str, ...], data: object, error_type: str, prefix: str) -> str:
    """Follow ``loc`` through ``data``; steps that are not keys/indices are union tags.

    A tag may also be a key of the object (``truncation.retention_ratio`` is both the union tag
    and a field): the reading that follows the most steps as keys wins.
    """
    followed = _follow(loc, 0, data, {})[1]
    path = prefix
    for position in followed:
        path = _join(path, loc[position])
    last = len(loc) - 1
    if error_type == "missing" and loc and isinstance(loc[last], str) and last not in followed:
        path = _join(path, loc[last])
    return path


def _follow(
    loc: tuple[int | str, ...], start: int, node: object, memo: dict[tuple[int, int], tuple[int, list[int]]]
) -> tuple[int, list[int]]:
    """``(count, positions)``: the positions of ``loc[start:]`` read as keys, in the best reading."""
    if start == len(loc):
        return 0, []
    key = (start, id(node))
    if key not in memo:
        found, child = _child(node, loc[start])
        best = _follow(loc, start + 1, node, memo)
        if found:
            count, positions = _follow(loc, start + 1, child, memo)
            if count + 1 >= best[0]:
                best = (count + 1, [start, *positions])
        memo[key] = best
    return memo[key]


def _child(node: object, step: int | str) -> tuple[bool, object]:
    if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
        return True, node[step]
    if isinstance(step, str) and isinstance(node, dict) and step in node:
        return True, node[step]
    return False, None


def _describe(error: ErrorDetails, param: str) -> tuple[str, str, str]:
    """``(code, message, param)`` for one pydantic error at ``param``."""
    kind = error["type"]
    value = error.get("input")
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind in _CUSTOM_CODES:
        if ctx.get("at"):
            param = _join(param, ctx["at"])
        return kind, error["msg"].replace("{param}", param), param
    if kind == "missing":
        return "missing_required_parameter", f"Missing required parameter: '{param}'.", param
    if kind == "extra_forbidden":
        return "unknown_parameter", f"Unknown parameter: '{param}'.", param
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return _describe_union_tag(kind, value, ctx, param)
    if kind == "literal_error":
        return _describe_literal(value, ctx, param)
    if kind in _EXPECTED_TYPE:
        return _invalid_type(param, _EXPECTED_TYPE[kind], value)
    if kind in _BOUNDS:
        return _describe_bound(kind, value, ctx, param)
    if kind in ("string_too_long", "too_long"):
        return _describe_length(kind, value, ctx, param)
    if kind == "string_pattern_mismatch":
        message = (
            f"Invalid '{param}': string does not match pattern. "
            f"Expected a string that matches the pattern '{ctx.get('pattern')}'."
        )
        return "invalid_value", message, param
    return "invalid_value", f"Invalid value for '{param}': {error['msg']}.", param


def _invalid_type(param: str, expected: str, value: object) -> tuple[str, str, str]:
    got = json_type_name(value)
    return "invalid_type", f"Invalid type for '{param}': expected {expected}, got {got}", param


def _describe_union_tag(kind: str, value: object, ctx: dict[str, Any], param: str) -> tuple[str, str, str]:
    tags = _QUOTED.findall(str(ctx.get("expected_tags", "")))
    wire_tags = [t for t in tags if t not in JSON_KINDS]
    if isinstance(value, dict):
        tag_param = _join(param, "type")
        if "type" not in value:
            return "missing_required_parameter", f"Missing required parameter: '{tag_param}'.", tag_param
        if not isinstance(value["type"], str):
            return _invalid_type(tag_param, "string", value["type"])
        if wire_tags:
            message = f"Invalid value: '{value['type']}'. Supported values are: {format_choices(wire_tags)}."
            return "invalid_value", message, tag_param
    kinds = [t for t in tags if t in JSON_KINDS]
    if wire_tags and "object" not in kinds:
        kinds.append("object")
    return _invalid_type(param, " or ".join(kinds) or "object", value)


def _describe_literal(value: object, ctx: dict[str, Any], param: str) -> tuple[str, str, str]:
    expected_text = str(ctx.get("expected", ""))
    choices: list[object] = list(_QUOTED.findall(expected_text))
    if not choices:
        choices = [int(v) if v.isdigit() else v for v in re.split(r", | or ", expected_text) if v]
    if choices and json_type_name(value) != json_type_name(choices[0]):
        return _invalid_type(param, json_type_name(choices[0]), value)
    message = f"Invalid value: {_quote(value)}. Supported values are: {format_choices(choices)}."
    return "invalid_value", message, param


def _describe_bound(kind: str, value: object, ctx: dict[str, Any], param: str) -> tuple[str, str, str]:
    key, side, operator = _BOUNDS[kind]
    limit = ctx.get(key)
    number = "integer" if isinstance(value, int) and isinstance(limit, int) else "decimal"
    code = f"{number}_{'above_max' if side.startswith('above') else 'below_min'}_value"
    message = (
        f"Invalid '{param}': {number} {side} value. "
        f"Expected a value {operator} {limit}, but got {json.dumps(value)} instead."
    )
    return code, message, param


def _describe_length(kind: str, value: object, ctx: dict[str, Any], param: str) -> tuple[str, str, str]:
    what = "string" if kind == "string_too_long" else "array"
    limit = ctx.get("max_length")
    size = len(value) if isinstance(value, str | list | tuple | dict) else 0
    message = (
        f"Invalid '{param}': {what} too long. Expected {'a string' if what == 'string' else 'an array'} "
        f"with maximum length {limit}, but got {'a string' if what == 'string' else 'an array'} "
        f"with length {size} instead."
    )
    return f"{what}_above_max_length", message, param
