"""Bounds on what a client sizes: numeric ranges, string and list lengths, JSON nesting depth.

Every number and size a client gives in a session config, a ``response.create`` or an item is
bounded, so that no frame can make the server spin (``idle_timeout_ms: 0``), hold unbounded state
(10,000 tools, a 100,000-character voice) or recurse past its stack (JSON nested 1,000 deep).
OpenAI's documented ranges are used where they exist; the others are Palaver's choice, generous
for every real client. ``docs/security.md`` lists them all.

Two nesting limits: a whole client frame may nest at most :data:`MAX_FRAME_DEPTH` objects/arrays
(checked by :func:`loads_client_json`, whatever the depth, without recursion), and a free-form
JSON field inside it (tool ``parameters``, tracing ``metadata``, prompt variables, MCP schemas) at
most :data:`MAX_JSON_FIELD_DEPTH` (checked by the :data:`FreeJson` type, an ``invalid_value`` error
naming the field).
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo

from .errors import ProtocolError
from .validation_errors import custom_error

__all__ = [
    "CLIENT_INPUT",
    "IDLE_TIMEOUT_MAX_MS",
    "IDLE_TIMEOUT_MIN_MS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_FRAME_DEPTH",
    "MAX_HEADERS",
    "MAX_ID_CHARS",
    "MAX_INSTRUCTIONS_CHARS",
    "MAX_JSON_FIELD_DEPTH",
    "MAX_LABEL_CHARS",
    "MAX_LIST_ITEMS",
    "MAX_POST_INSTRUCTIONS_TOKENS",
    "MAX_PREFIX_PADDING_MS",
    "MAX_SILENCE_DURATION_MS",
    "MAX_TOOLS",
    "MAX_TOOL_NAME_CHARS",
    "MAX_VOICE_CHARS",
    "TOOL_NAME_PATTERN",
    "ClientDescription",
    "ClientJsonError",
    "DescriptionText",
    "FreeJson",
    "IdText",
    "InstructionsText",
    "LabelText",
    "ToolName",
    "check_free_json",
    "check_max_properties",
    "deeper_than",
    "loads_client_json",
]

# ------------------------------------------------------------------ nesting

#: Objects/arrays one client frame may nest (a session.update with a 32-deep tool schema is ~36).
MAX_FRAME_DEPTH = 100
#: Objects/arrays a free-form JSON field (tool ``parameters``, ``metadata`` …) may nest.
MAX_JSON_FIELD_DEPTH = 32

# ------------------------------------------------------------------ sizes (characters / items)

#: Tools in a session or a response (OpenAI's function-calling cap).
MAX_TOOLS = 128
#: A function name: OpenAI's pattern and length.
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]+$"
MAX_TOOL_NAME_CHARS = 64
#: Session or response instructions (about what a 32k-token context holds).
MAX_INSTRUCTIONS_CHARS = 128_000
#: Tool, MCP server descriptions; a transcription prompt.
MAX_DESCRIPTION_CHARS = 16_384
#: A voice name or custom voice id.
MAX_VOICE_CHARS = 64
#: Labels and names: MCP ``server_label``, model and language names, prompt variable names.
MAX_LABEL_CHARS = 128
#: Ids and tokens: prompt ids, tunnel ids, workflow names, header names and values, URLs.
MAX_ID_CHARS = 8_192
#: Entries of a client-given list or object that has no documented cap (keywords, filters …).
MAX_LIST_ITEMS = 1_024
#: Extra HTTP headers of an MCP tool.
MAX_HEADERS = 64

# ------------------------------------------------------------------ milliseconds

#: ``idle_timeout_ms`` (OpenAI's documented range).
IDLE_TIMEOUT_MIN_MS = 5_000
IDLE_TIMEOUT_MAX_MS = 30_000
#: ``prefix_padding_ms``: audio kept before detected speech.
MAX_PREFIX_PADDING_MS = 10_000
#: ``silence_duration_ms``: silence that ends a turn.
MAX_SILENCE_DURATION_MS = 60_000
#: ``token_limits.post_instructions``.
MAX_POST_INSTRUCTIONS_TOKENS = 1_000_000

InstructionsText = Annotated[str, Field(max_length=MAX_INSTRUCTIONS_CHARS)]
DescriptionText = Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)]
LabelText = Annotated[str, Field(max_length=MAX_LABEL_CHARS)]
IdText = Annotated[str, Field(max_length=MAX_ID_CHARS)]
ToolName = Annotated[str, Field(max_length=MAX_TOOL_NAME_CHARS, pattern=TOOL_NAME_PATTERN)]


def deeper_than(value: object, limit: int) -> bool:
    """Whether ``value`` (decoded JSON) nests more than ``limit`` objects/arrays. No recursion.

    A scalar has depth 0, ``{}`` and ``[]`` depth 1, ``{"a": [1]}`` depth 2.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: Any
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


#: Validation context of client input (``model_validate(..., context=CLIENT_INPUT)``): the bounds
#: that models built by the server from other sources (an MCP server's tool list) must not trip.
CLIENT_INPUT: dict[str, Any] = {"palaver_client_input": True}


def _from_client(info: ValidationInfo) -> bool:
    context = info.context
    return isinstance(context, dict) and context.get("palaver_client_input") is True


def check_free_json(value: Any, info: ValidationInfo) -> Any:
    """Validator of a free-form JSON field: at most :data:`MAX_JSON_FIELD_DEPTH` levels (client input)."""
    if _from_client(info) and deeper_than(value, MAX_JSON_FIELD_DEPTH):
        raise custom_error(
            "invalid_value",
            "Invalid '{param}': JSON nested too deeply. Expected at most "
            f"{MAX_JSON_FIELD_DEPTH} levels of nested objects and arrays.",
        )
    return value


def _client_max_chars(limit: int) -> AfterValidator:
    """Validator: a string of at most ``limit`` characters when it comes from a client."""

    def check(value: str, info: ValidationInfo) -> str:
        if _from_client(info) and len(value) > limit:
            raise custom_error(
                "string_above_max_length",
                f"Invalid '{{param}}': string too long. Expected a string with maximum length {limit}, "
                f"but got a string with length {len(value)} instead.",
            )
        return value

    return AfterValidator(check)


#: A free-form JSON object given by the client (a JSON Schema, metadata …), depth-bounded.
FreeJson = Annotated[dict[str, Any], AfterValidator(check_free_json)]
#: A description the server may also build from an MCP server's (unbounded) text.
ClientDescription = Annotated[str, _client_max_chars(MAX_DESCRIPTION_CHARS)]


def check_max_properties(limit: int) -> AfterValidator:
    """Validator: an object with at most ``limit`` properties (``object_above_max_properties``)."""

    def check(value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(value) > limit:
            raise custom_error(
                "object_above_max_properties",
                f"Invalid '{{param}}': too many properties. Expected an object with at most {limit} "
                f"properties, but got an object with {len(value)} properties instead.",
            )
        return value

    return AfterValidator(check)


class ClientJsonError(ProtocolError, ValueError):
    """A client frame that is not JSON Palaver accepts; ``str()`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_json")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ClientJsonError(f"the number {text} is out of range")
    return number


def _no_constant(name: str) -> Any:
    raise ClientJsonError(f"{name} is not a JSON value")


#: A ``\\uD800``-``\\uDFFF`` escape: the frame may hold a lone surrogate (not encodable as UTF-8).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads_client_json(frame: str | bytes) -> Any:
    """Decode one client frame, refusing what could hurt the server (raises ``ClientJsonError``).

    Refused: invalid JSON or UTF-8, ``NaN``/``Infinity``, numbers too large for a double, strings
    with a lone surrogate (they could never be echoed back: UTF-8 cannot encode them), and nesting
    deeper than :data:`MAX_FRAME_DEPTH` however deep (``json`` raises ``RecursionError`` past
    ~1,000 levels: caught; below that the decoded value is measured without recursion).
    """
    too_deep = f"objects and arrays nested deeper than {MAX_FRAME_DEPTH} levels"
    try:
        text = frame.decode(json.detect_encoding(frame)) if isinstance(frame, bytes) else frame
        data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise ClientJsonError(too_deep) from None
    except ClientJsonError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientJsonError(str(exc)) from None
    if deeper_than(data, MAX_FRAME_DEPTH):
        raise ClientJsonError(too_deep)
    if _SURROGATE_ESCAPE.search(text) is not None:
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ClientJsonError("a string holds a lone surrogate (\\uD800-\\uDFFF)") from None
    return data
