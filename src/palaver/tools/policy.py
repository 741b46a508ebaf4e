"""Operator policies on tool calls: hard limits that hold whatever the model says.

A policy file (TOML, or JSON by its ``.json`` extension; the server reads its path from
``PALAVER_TOOL_POLICY``) lists rules per tool: deny a tool outright, cap its calls per session,
require a confirmation, and bound its arguments (numeric ranges, allow and deny lists, regular
expressions, lengths, required arguments; nested arguments by dotted path). See
``docs/tool-policies.md`` for the format.

Use::

    policy = load_policy(path)              # or ToolPolicy.allow_all()
    state = PolicyState(session_id)         # one per session
    decision = policy.decide(name, raw_json_arguments, state=state)
    if decision.allowed:
        ...run the tool...
        state.record(name, decision)
    elif decision.needs_confirmation:
        ...ask the user; if they agree: state.confirm(name, arguments) and decide again...
    else:
        output = decision.refusal_output()  # give this to the model instead of a result

Everything here is pure: no I/O except reading the policy file, no asyncio.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal

from palaver.errors import ToolError
from palaver.redact import pii

__all__ = [
    "ENV_VAR",
    "REASONS",
    "ArgumentRule",
    "Decision",
    "PolicyDefaults",
    "PolicyError",
    "PolicyState",
    "ToolPolicy",
    "ToolRule",
    "load_policy",
]

log = logging.getLogger("palaver.tools.policy")

#: The environment variable the server reads the policy file's path from.
ENV_VAR: Final = "PALAVER_TOOL_POLICY"

ALLOWED: Final = "allowed"
DENIED_TOOL: Final = "denied_tool"
UNKNOWN_TOOL: Final = "unknown_tool"
ARGUMENT_OUT_OF_BOUNDS: Final = "argument_out_of_bounds"
ARGUMENT_NOT_ALLOWED: Final = "argument_not_allowed"
MISSING_ARGUMENT: Final = "missing_argument"
INVALID_ARGUMENTS: Final = "invalid_arguments"
BUDGET_EXHAUSTED: Final = "budget_exhausted"
CONFIRMATION_REQUIRED: Final = "confirmation_required"

#: Every machine code ``Decision.reason`` can take.
REASONS: Final = frozenset(
    {
        ALLOWED,
        DENIED_TOOL,
        UNKNOWN_TOOL,
        ARGUMENT_OUT_OF_BOUNDS,
        ARGUMENT_NOT_ALLOWED,
        MISSING_ARGUMENT,
        INVALID_ARGUMENTS,
        BUDGET_EXHAUSTED,
        CONFIRMATION_REQUIRED,
    }
)

Scalar = str | int | float | bool

_DEFAULTS_KEYS: Final = ("max_calls_per_session", "unknown_tools")
_TOP_KEYS: Final = ("defaults", "tool")
_TOOL_KEYS: Final = ("name", "deny", "confirm", "max_calls_per_session", "arguments")
_ARGUMENT_KEYS: Final = (
    "required",
    "min",
    "max",
    "exclusive_min",
    "exclusive_max",
    "allowed",
    "denied",
    "pattern",
    "min_length",
    "max_length",
    "ignore_case",
)
_GLOB_CHARS: Final = frozenset("*?[")
#: Arguments nested deeper than this are refused as malformed.
MAX_DEPTH: Final = 64
_TOO_DEEP: Final = f"the arguments are nested more than {MAX_DEPTH} levels deep"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Final = _Missing()


# --------------------------------------------------------------------------------------------- errors


class PolicyError(ToolError, ValueError):
    """A policy file Palaver cannot use: names the file, the rule and the problem."""

    def __init__(self, source: str, rule: str | None, problem: str) -> None:
        self.source = source
        self.rule = rule
        self.problem = problem
        where = f"{source}: {rule}" if rule else source
        super().__init__(f"{where}: {problem}")


# --------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class ArgumentRule:
    """Constraints on one argument, addressed by a dotted ``path`` (``*`` = every element)."""

    path: str
    required: bool = False
    min: int | float | None = None
    max: int | float | None = None
    exclusive_min: int | float | None = None
    exclusive_max: int | float | None = None
    allowed: tuple[Scalar, ...] | None = None
    denied: tuple[Scalar, ...] | None = None
    pattern: re.Pattern[str] | None = None
    min_length: int | None = None
    max_length: int | None = None
    ignore_case: bool = False

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))

    @property
    def numeric(self) -> bool:
        return any(b is not None for b in (self.min, self.max, self.exclusive_min, self.exclusive_max))


@dataclass(frozen=True)
class ToolRule:
    """One ``[[tool]]`` table. ``name`` is a tool name or a glob pattern (``*``, ``?``, ``[...]``)."""

    name: str
    deny: bool = False
    confirm: bool = False
    max_calls_per_session: int | None = None
    arguments: tuple[ArgumentRule, ...] = ()

    @property
    def label(self) -> str:
        """How decisions, logs and errors name this rule: ``tool[refund]``."""
        return f"tool[{self.name}]"

    @property
    def is_glob(self) -> bool:
        return any(c in _GLOB_CHARS for c in self.name)

    def matches(self, tool: str) -> bool:
        return fnmatch.fnmatchcase(tool, self.name) if self.is_glob else tool == self.name


@dataclass(frozen=True)
class PolicyDefaults:
    """The ``[defaults]`` table."""

    #: Budget across all tools in one session; ``None`` is unlimited.
    max_calls_per_session: int | None = None
    #: What happens to a tool no ``[[tool]]`` rule matches.
    unknown_tools: Literal["allow", "deny"] = "allow"


# --------------------------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decision:
    """What the policy says about one tool call."""

    allowed: bool
    needs_confirmation: bool
    #: Machine code, one of ``REASONS``.
    reason: str
    #: A sentence for humans and the model, e.g. "refund: amount 50 exceeds the maximum of 10".
    message: str
    #: The rule that decided (``tool[refund].arguments.amount.max``, ``defaults.unknown_tools``);
    #: ``None`` when no rule matched and the call was allowed, or the arguments were malformed.
    rule: str | None
    tool: str = ""
    #: The confirmation this call uses up when recorded.
    _confirmation: Hashable | None = field(default=None, repr=False, compare=False)

    def refusal_output(self) -> str:
        """The JSON string given to the model instead of a tool result."""
        if self.allowed:
            raise ValueError(f"{self.tool}: the call was allowed; there is nothing to refuse")
        return json.dumps(
            {
                "error": "policy_violation",
                "reason": self.reason,
                "message": self.message,
                "allowed": False,
                "needs_confirmation": self.needs_confirmation,
            },
            ensure_ascii=False,
        )


class PolicyState:
    """One session's record: calls made per tool and in total, confirmations granted."""

    def __init__(self, session_id: str | None = None) -> None:
        #: Logged with every decision unless ``decide(session_id=...)`` overrides it.
        self.session_id = session_id
        self._calls: Counter[str] = Counter()
        self._total = 0
        self._confirmations: Counter[Hashable] = Counter()

    def calls(self, tool: str) -> int:
        """Allowed calls recorded for ``tool`` so far."""
        return self._calls[tool]

    @property
    def total_calls(self) -> int:
        """Allowed calls recorded for all tools so far."""
        return self._total

    def confirm(self, tool: str, arguments: Mapping[str, Any] | str) -> None:
        """Grant one call of ``tool`` with exactly these arguments (after the user agreed).

        Arguments compare by value: key order, whitespace and ``5`` vs ``5.0`` do not matter.
        Raises ``ValueError`` if ``arguments`` is not a JSON object.
        """
        parsed, problem = _parse_arguments(arguments)
        if parsed is None:
            raise ValueError(f"{tool}: cannot confirm: {problem}")
        self._confirmations[(tool, _canonical(parsed))] += 1

    def is_confirmed(self, tool: str, arguments: Mapping[str, Any] | str) -> bool:
        parsed, _ = _parse_arguments(arguments)
        return parsed is not None and self._confirmations[(tool, _canonical(parsed))] > 0

    def record(self, tool: str, decision: Decision) -> None:
        """Count a call that ran. Blocked decisions count nothing (so this may be called for any)."""
        if decision.tool and decision.tool != tool:
            raise ValueError(f"decision is for {decision.tool!r}, not {tool!r}")
        if not decision.allowed:
            return
        self._calls[tool] += 1
        self._total += 1
        key = decision._confirmation
        if key is not None and self._confirmations[key] > 0:
            self._confirmations[key] -= 1
            if not self._confirmations[key]:
                del self._confirmations[key]


# --------------------------------------------------------------------------------------------- policy


class ToolPolicy:
    """Rules for tool calls. Exact names win over glob patterns; among globs the first in the file."""

    def __init__(
        self,
        rules: Sequence[ToolRule] = (),
        defaults: PolicyDefaults | None = None,
        *,
        source: str | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.defaults = defaults or PolicyDefaults()
        #: The file the policy came from (``None`` if built in code).
        self.source = source
        self._exact = {r.name: r for r in self.rules if not r.is_glob}
        self._globs = tuple(r for r in self.rules if r.is_glob)

    @classmethod
    def allow_all(cls) -> ToolPolicy:
        """No policy configured: every call is allowed (and still counted)."""
        return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<policy>") -> ToolPolicy:
        """Build from the parsed content of a policy file; raises ``PolicyError``."""
        return _parse_policy(data, source)

    def rule_for(self, tool: str) -> ToolRule | None:
        """The rule that governs ``tool``, if any."""
        exact = self._exact.get(tool)
        if exact is not None:
            return exact
        return next((r for r in self._globs if r.matches(tool)), None)

    def decide(
        self,
        tool: str,
        arguments: Mapping[str, Any] | str,
        *,
        state: PolicyState,
        session_id: str | None = None,
    ) -> Decision:
        """Decide one call. ``arguments`` may be the raw JSON string the model produced.

        Pure apart from logging: ``state`` is only read (``state.record`` counts a call that ran).
        """
        decision = self._decide(tool, arguments, state)
        _log_decision(decision, session_id if session_id is not None else state.session_id)
        return decision

    def _decide(self, tool: str, arguments: Mapping[str, Any] | str, state: PolicyState) -> Decision:
        rule = self.rule_for(tool)
        if rule is None and self.defaults.unknown_tools == "deny":
            return _blocked(
                tool, UNKNOWN_TOOL, f"{tool}: this tool is not allowed here", "defaults.unknown_tools"
            )
        if rule is not None and rule.deny:
            return _blocked(tool, DENIED_TOOL, f"{tool}: this tool is not allowed", f"{rule.label}.deny")

        parsed, problem = _parse_arguments(arguments)
        if parsed is None:
            return _blocked(tool, INVALID_ARGUMENTS, f"{tool}: {problem}", None)

        if rule is not None:
            for arg in rule.arguments:
                violation = _check_argument(arg, parsed)
                if violation is not None:
                    reason, text, key = violation
                    return _blocked(
                        tool, reason, f"{tool}: {text}", f"{rule.label}.arguments.{arg.path}.{key}"
                    )

            limit = rule.max_calls_per_session
            if limit is not None and state.calls(tool) >= limit:
                calls = "call" if limit == 1 else "calls"
                return _blocked(
                    tool,
                    BUDGET_EXHAUSTED,
                    f"{tool}: the limit of {limit} {calls} per session has been reached",
                    f"{rule.label}.max_calls_per_session",
                )

        total = self.defaults.max_calls_per_session
        if total is not None and state.total_calls >= total:
            calls = "call" if total == 1 else "calls"
            return _blocked(
                tool,
                BUDGET_EXHAUSTED,
                f"{tool}: the session's limit of {total} tool {calls} has been reached",
                "defaults.max_calls_per_session",
            )

        confirmation: Hashable | None = None
        if rule is not None and rule.confirm:
            confirmation = (tool, _canonical(parsed))
            if state._confirmations[confirmation] <= 0:
                return Decision(
                    allowed=False,
                    needs_confirmation=True,
                    reason=CONFIRMATION_REQUIRED,
                    message=f"{tool}: this call needs the user's confirmation, which has not been given",
                    rule=f"{rule.label}.confirm",
                    tool=tool,
                )

        return Decision(
            allowed=True,
            needs_confirmation=False,
            reason=ALLOWED,
            message=f"{tool}: allowed",
            rule=rule.label if rule is not None else None,
            tool=tool,
            _confirmation=confirmation,
        )


def _blocked(tool: str, reason: str, message: str, rule: str | None) -> Decision:
    return Decision(
        allowed=False, needs_confirmation=False, reason=reason, message=message, rule=rule, tool=tool
    )


def _log_decision(decision: Decision, session_id: str | None) -> None:
    extra = {
        "tool": decision.tool,
        "reason": decision.reason,
        "rule": decision.rule,
        "session_id": session_id,
        "allowed": decision.allowed,
    }
    rule = decision.rule or "-"
    session = session_id or "-"
    if decision.allowed:
        log.info(
            "tool call allowed: tool=%s reason=%s rule=%s session=%s",
            decision.tool,
            decision.reason,
            rule,
            session,
            extra=extra,
        )
    else:
        log.warning(
            "tool call blocked: tool=%s reason=%s rule=%s session=%s: %s",
            decision.tool,
            decision.reason,
            rule,
            session,
            pii(decision.message),  # it quotes the blocked arguments
            extra=extra,
        )


# --------------------------------------------------------------------------------------------- arguments


def _parse_arguments(arguments: Mapping[str, Any] | str) -> tuple[Mapping[str, Any] | None, str]:
    """The arguments as an object, or ``None`` and why not."""
    if isinstance(arguments, Mapping):
        return (arguments, "") if _depth(arguments) <= MAX_DEPTH else (None, _TOO_DEEP)
    if not isinstance(arguments, str):
        return None, f"the arguments must be a JSON object, got {type(arguments).__name__}"
    if not arguments.strip():
        return {}, ""  # models send "" for tools without parameters
    try:
        parsed = json.loads(
            arguments,
            parse_float=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicate_keys,
        )
    except (ValueError, RecursionError) as exc:
        return None, f"the arguments are not valid JSON ({exc})"
    if not isinstance(parsed, dict):
        return None, f"the arguments must be a JSON object, got {_kind(parsed)}"
    if _depth(parsed) > MAX_DEPTH:
        return None, _TOO_DEEP
    return parsed, ""


def _depth(value: Any) -> int:
    """How deeply objects and lists nest (iteratively: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _canonical(value: Any) -> Hashable:
    """A hashable form equal for equal JSON values (key order, 5 vs 5.0 and whitespace aside)."""
    if isinstance(value, Mapping):
        return ("o", tuple(sorted((str(k), _canonical(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("a", tuple(_canonical(v) for v in value))
    if isinstance(value, bool) or value is None:
        return ("c", value)
    if isinstance(value, int | float | Decimal):
        number = _to_decimal(value)
        return ("n", number) if number is not None else ("x", repr(value))
    if isinstance(value, str):
        return ("s", value)
    return ("x", repr(value))


def _lookup(node: Any, segments: tuple[str, ...], done: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` for every value ``segments`` addresses; ``_MISSING`` where there is none."""
    if not segments:
        yield ".".join(done), (_MISSING if node is None else node)
        return
    seg, rest = segments[0], segments[1:]
    if seg == "*":
        if isinstance(node, Mapping):
            for key, value in node.items():
                yield from _lookup(value, rest, (*done, str(key)))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from _lookup(value, rest, (*done, str(index)))
        else:
            yield ".".join((*done, *segments)), _MISSING
        return
    if isinstance(node, Mapping) and seg in node:
        yield from _lookup(node[seg], rest, (*done, seg))
    elif isinstance(node, list) and seg.isascii() and seg.isdigit() and int(seg) < len(node):
        yield from _lookup(node[int(seg)], rest, (*done, seg))
    else:
        yield ".".join((*done, *segments)), _MISSING


def _check_argument(arg: ArgumentRule, arguments: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The first violation as ``(reason, text, constraint key)``, or ``None``."""
    for path, value in _lookup(arguments, arg.segments, ()):
        violation = _check_value(arg, path, value)
        if violation is not None:
            return violation
    return None


def _check_value(arg: ArgumentRule, path: str, value: Any) -> tuple[str, str, str] | None:
    if value is _MISSING:
        if arg.required:
            return MISSING_ARGUMENT, f"the required argument {path} is missing", "required"
        return None
    shown = f"{path} {_render(value)}"

    if arg.numeric:
        first = next(
            k for k in ("min", "max", "exclusive_min", "exclusive_max") if getattr(arg, k) is not None
        )
        number = None if isinstance(value, bool) else _to_decimal(value)
        if number is None:
            return ARGUMENT_NOT_ALLOWED, f"{shown} must be a number", first
        if arg.min is not None and number < _to_decimal_strict(arg.min):
            return ARGUMENT_OUT_OF_BOUNDS, f"{shown} is below the minimum of {_num(arg.min)}", "min"
        if arg.max is not None and number > _to_decimal_strict(arg.max):
            return ARGUMENT_OUT_OF_BOUNDS, f"{shown} exceeds the maximum of {_num(arg.max)}", "max"
        if arg.exclusive_min is not None and number <= _to_decimal_strict(arg.exclusive_min):
            bound = _num(arg.exclusive_min)
            return ARGUMENT_OUT_OF_BOUNDS, f"{shown} must be greater than {bound}", "exclusive_min"
        if arg.exclusive_max is not None and number >= _to_decimal_strict(arg.exclusive_max):
            bound = _num(arg.exclusive_max)
            return ARGUMENT_OUT_OF_BOUNDS, f"{shown} must be less than {bound}", "exclusive_max"

    if arg.min_length is not None or arg.max_length is not None:
        key = "min_length" if arg.min_length is not None else "max_length"
        if isinstance(value, str):
            size, unit = len(value), "characters"
        elif isinstance(value, list):
            size, unit = len(value), "items"
        else:
            return ARGUMENT_NOT_ALLOWED, f"{shown} must be a string or a list", key
        if arg.min_length is not None and size < arg.min_length:
            text = f"{path} has {size} {unit}, fewer than the minimum of {arg.min_length}"
            return ARGUMENT_OUT_OF_BOUNDS, text, "min_length"
        if arg.max_length is not None and size > arg.max_length:
            text = f"{path} has {size} {unit}, more than the maximum of {arg.max_length}"
            return ARGUMENT_OUT_OF_BOUNDS, text, "max_length"

    if arg.allowed is not None or arg.denied is not None:
        key = "allowed" if arg.allowed is not None else "denied"
        if not isinstance(value, str | int | float | Decimal):
            return ARGUMENT_NOT_ALLOWED, f"{shown} must be a single value", key
        if arg.allowed is not None and not any(_same(value, e, arg.ignore_case) for e in arg.allowed):
            options = _list(arg.allowed)
            return ARGUMENT_NOT_ALLOWED, f"{shown} is not one of the allowed values {options}", "allowed"
        if arg.denied is not None and any(_same(value, e, arg.ignore_case) for e in arg.denied):
            return ARGUMENT_NOT_ALLOWED, f"{shown} is not allowed", "denied"

    if arg.pattern is not None:
        if not isinstance(value, str):
            return ARGUMENT_NOT_ALLOWED, f"{shown} must be a string", "pattern"
        if arg.pattern.fullmatch(value) is None:
            return (
                ARGUMENT_NOT_ALLOWED,
                f"{shown} does not match the pattern {arg.pattern.pattern}",
                "pattern",
            )
    return None


def _to_decimal(value: Any) -> Decimal | None:
    """A finite number from a JSON number or numeric string (``"50"``), else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, str):
            number = Decimal(value.strip())
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _to_decimal_strict(value: int | float) -> Decimal:
    number = _to_decimal(value)
    assert number is not None  # bounds are validated finite numbers at load time
    return number


def _norm(text: str, ignore_case: bool) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    return text.casefold() if ignore_case else text


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False}.get(_norm(value, True))
    return None


def _same(value: Any, entry: Scalar, ignore_case: bool) -> bool:
    """Does an argument value equal a list entry? Numbers by value ("5" == 5), strings normalised."""
    if isinstance(value, bool) or isinstance(entry, bool):
        mine = _as_bool(value)
        return mine is not None and mine == _as_bool(entry)
    a, b = _to_decimal(value), _to_decimal(entry)
    if a is not None and b is not None:
        return a == b
    if isinstance(value, str) and isinstance(entry, str):
        return _norm(value, ignore_case) == _norm(entry, ignore_case)
    return False


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _render(value: Any, limit: int = 60) -> str:
    if isinstance(value, Mapping | list):
        return f"({_kind(value)})"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return _num(value)
    text = json.dumps(str(value), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 2] + '…"'


def _num(value: int | float | Decimal) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def _list(values: Sequence[Scalar], limit: int = 12) -> str:
    shown = ", ".join(_render(v) for v in values[:limit])
    return shown if len(values) <= limit else f"{shown} (and {len(values) - limit} more)"


# --------------------------------------------------------------------------------------------- loading


def load_policy(path: str | os.PathLike[str]) -> ToolPolicy:
    """Read a policy file: TOML (``.toml``) or JSON (``.json``). Raises ``PolicyError``."""
    file = Path(path)
    source = str(file)
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise PolicyError(source, None, f"unsupported file type {suffix or '(none)'!r}; use .toml or .json")
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise PolicyError(source, None, f"cannot read the policy file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(source, None, f"not UTF-8 text ({exc})") from exc
    data: Any
    if suffix == ".json":
        try:
            data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
        except ValueError as exc:
            raise PolicyError(source, None, f"not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise PolicyError(source, None, f"the top level must be an object, got {_kind(data)}")
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(source, None, f"not valid TOML: {exc}") from exc
    return _parse_policy(data, source)


def _parse_policy(data: Mapping[str, Any], source: str) -> ToolPolicy:
    _known_keys(data, _TOP_KEYS, source, None, "top level")
    defaults = _parse_defaults(data.get("defaults", {}), source)
    tables = data.get("tool", [])
    if not isinstance(tables, list):
        raise PolicyError(source, None, "tool must be an array of tables ([[tool]]), got " + _kind(tables))
    rules: list[ToolRule] = []
    seen: set[str] = set()
    for index, table in enumerate(tables, start=1):
        rule = _parse_tool(table, index, source)
        if rule.name in seen:
            raise PolicyError(
                source, rule.label, "a second rule for the same name (only the first would apply)"
            )
        seen.add(rule.name)
        rules.append(rule)
    return ToolPolicy(rules, defaults, source=source)


def _parse_defaults(table: Any, source: str) -> PolicyDefaults:
    if not isinstance(table, Mapping):
        raise PolicyError(source, "defaults", f"must be a table, got {_kind(table)}")
    _known_keys(table, _DEFAULTS_KEYS, source, "defaults", "[defaults]")
    budget = _optional_count(table, "max_calls_per_session", source, "defaults")
    unknown = table.get("unknown_tools", "allow")
    if unknown not in ("allow", "deny"):
        raise PolicyError(
            source, "defaults", f'unknown_tools must be "allow" or "deny", got {_render(unknown)}'
        )
    return PolicyDefaults(max_calls_per_session=budget, unknown_tools=unknown)


def _parse_tool(table: Any, index: int, source: str) -> ToolRule:
    where = f"tool #{index}"
    if not isinstance(table, Mapping):
        raise PolicyError(source, where, f"must be a table, got {_kind(table)}")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        got = "nothing" if name is None else _render(name)
        raise PolicyError(
            source, where, f"name must be a non-empty string (a tool name or pattern), got {got}"
        )
    if name != name.strip():
        raise PolicyError(source, where, f"name {_render(name)} has surrounding whitespace")
    label = f"tool[{name}]"
    _known_keys(table, _TOOL_KEYS, source, label, "[[tool]]")
    deny = _optional_bool(table, "deny", source, label)
    confirm = _optional_bool(table, "confirm", source, label)
    budget = _optional_count(table, "max_calls_per_session", source, label)
    arguments = table.get("arguments", {})
    if not isinstance(arguments, Mapping):
        raise PolicyError(source, label, f"arguments must be a table, got {_kind(arguments)}")
    parsed = tuple(_parse_argument(str(path), spec, source, label) for path, spec in arguments.items())
    return ToolRule(name=name, deny=deny, confirm=confirm, max_calls_per_session=budget, arguments=parsed)


def _parse_argument(path: str, spec: Any, source: str, label: str) -> ArgumentRule:
    at = f"arguments.{path}"
    if not path or any(not seg for seg in path.split(".")):
        raise PolicyError(source, label, f"{at}: an argument path must be names separated by single dots")
    if not isinstance(spec, Mapping):
        raise PolicyError(source, label, f"{at} must be a table of constraints, got {_kind(spec)}")
    _known_keys(spec, _ARGUMENT_KEYS, source, label, at)

    bounds: dict[str, int | float | None] = {}
    for key in ("min", "max", "exclusive_min", "exclusive_max"):
        value = spec.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or _to_decimal(value) is None
        ):
            raise PolicyError(source, label, f"{at}.{key} must be a finite number, got {_render(value)}")
        bounds[key] = value
    low = [b for b in (bounds["min"], bounds["exclusive_min"]) if b is not None]
    high = [b for b in (bounds["max"], bounds["exclusive_max"]) if b is not None]
    if low and high and max(low) > min(high):
        raise PolicyError(
            source, label, f"{at}: the minimum {_num(max(low))} exceeds the maximum {_num(min(high))}"
        )

    lists: dict[str, tuple[Scalar, ...] | None] = {}
    for key in ("allowed", "denied"):
        value = spec.get(key)
        if value is None:
            lists[key] = None
            continue
        if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
            raise PolicyError(
                source,
                label,
                f"{at}.{key} must be a list of strings, numbers or booleans, got {_render(value)}",
            )
        if key == "allowed" and not value:
            raise PolicyError(source, label, f"{at}.allowed is empty (to forbid the tool use deny = true)")
        lists[key] = tuple(value)

    ignore_case = _optional_bool(spec, "ignore_case", source, label, at)
    pattern: re.Pattern[str] | None = None
    raw_pattern = spec.get("pattern")
    if raw_pattern is not None:
        if not isinstance(raw_pattern, str):
            raise PolicyError(source, label, f"{at}.pattern must be a string, got {_render(raw_pattern)}")
        try:
            pattern = re.compile(raw_pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise PolicyError(
                source, label, f"{at}.pattern {_render(raw_pattern)} is not a valid regular expression: {exc}"
            ) from exc

    min_length = _optional_count(spec, "min_length", source, label, at)
    max_length = _optional_count(spec, "max_length", source, label, at)
    if min_length is not None and max_length is not None and min_length > max_length:
        raise PolicyError(source, label, f"{at}: min_length {min_length} exceeds max_length {max_length}")

    return ArgumentRule(
        path=path,
        required=_optional_bool(spec, "required", source, label, at),
        min=bounds["min"],
        max=bounds["max"],
        exclusive_min=bounds["exclusive_min"],
        exclusive_max=bounds["exclusive_max"],
        allowed=lists["allowed"],
        denied=lists["denied"],
        pattern=pattern,
        min_length=min_length,
        max_length=max_length,
        ignore_case=ignore_case,
    )


def _known_keys(
    table: Mapping[str, Any], known: Sequence[str], source: str, rule: str | None, at: str
) -> None:
    for key in table:
        if key not in known:
            raise PolicyError(source, rule, f"unknown key {key!r} in {at} (known keys: {', '.join(known)})")


def _optional_bool(table: Mapping[str, Any], key: str, source: str, rule: str, at: str | None = None) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        name = f"{at}.{key}" if at else key
        raise PolicyError(source, rule, f"{name} must be true or false, got {_render(value)}")
    return value


def _optional_count(
    table: Mapping[str, Any], key: str, source: str, rule: str, at: str | None = None
) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        name = f"{at}.{key}" if at else key
        raise PolicyError(source, rule, f"{name} must be a whole number of 0 or more, got {_render(value)}")
    return value
