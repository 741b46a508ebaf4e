"""Pure parts of the MCP client: allowed_tools, require_approval, function names, errors."""

from __future__ import annotations

import random
import re
import string
from typing import Any

import pytest
from openai.types.realtime import RealtimeMcpToolCall
from pydantic import TypeAdapter

from palaver.protocol.items import McpCallItem, McpToolInfo
from palaver.protocol.tools import McpAllowedTools, McpRequireApproval
from palaver.tools.mcp import McpError
from palaver.tools.mcp_filters import filter_tools, is_tool_allowed, needs_approval
from palaver.tools.mcp_names import function_names

READ = McpToolInfo(
    name="check_availability", input_schema={"type": "object"}, annotations={"readOnlyHint": True}
)
WRITE = McpToolInfo(name="book_table", input_schema={"type": "object"}, annotations={"destructiveHint": True})
BARE = McpToolInfo(name="fail", input_schema={"type": "object"})
TOOLS = [READ, WRITE, BARE]
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def allowed(raw: Any) -> McpAllowedTools | None:
    return TypeAdapter(McpAllowedTools | None).validate_python(raw)


def approval(raw: Any) -> McpRequireApproval | None:
    return TypeAdapter(McpRequireApproval | None).validate_python(raw)


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (None, ["check_availability", "book_table", "fail"]),
        (["book_table", "nope"], ["book_table"]),
        ([], []),
        ({}, ["check_availability", "book_table", "fail"]),
        ({"tool_names": ["fail", "book_table"]}, ["book_table", "fail"]),
        ({"read_only": True}, ["check_availability"]),
        ({"read_only": False}, ["check_availability", "book_table", "fail"]),
        ({"tool_names": ["book_table", "check_availability"], "read_only": True}, ["check_availability"]),
    ],
)
def test_allowed_tools_filter(raw: Any, kept: list[str]) -> None:
    assert [tool.name for tool in filter_tools(allowed(raw), TOOLS)] == kept


def test_read_only_filter_rejects_a_tool_never_listed() -> None:
    assert not is_tool_allowed(allowed({"read_only": True}), "check_availability", None)
    assert is_tool_allowed(allowed(["check_availability"]), "check_availability", None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Absent: approval required, OpenAI's default.
        (None, {"check_availability": True, "book_table": True, "fail": True}),
        ("always", {"check_availability": True, "book_table": True, "fail": True}),
        ("never", {"check_availability": False, "book_table": False, "fail": False}),
        ({"never": {"read_only": True}}, {"check_availability": False, "book_table": True, "fail": True}),
        (
            {"never": {"tool_names": ["fail"]}},
            {"check_availability": True, "book_table": True, "fail": False},
        ),
        (
            {"always": {"tool_names": ["book_table"]}, "never": {}},
            {"check_availability": False, "book_table": True, "fail": False},
        ),
        # "always" wins over "never" when both match.
        (
            {"always": {"tool_names": ["check_availability"]}, "never": {"read_only": True}},
            {"check_availability": True, "book_table": True, "fail": True},
        ),
        # A filter object matching nothing leaves the default: approval required.
        (
            {"always": {"tool_names": ["book_table"]}},
            {"check_availability": True, "book_table": True, "fail": True},
        ),
    ],
)
def test_require_approval(raw: Any, expected: dict[str, bool]) -> None:
    policy = approval(raw)
    assert {tool.name: needs_approval(policy, tool.name, tool) for tool in TOOLS} == expected


def test_unlisted_tool_is_not_read_only_for_approval() -> None:
    assert needs_approval(approval({"never": {"read_only": True}}), "check_availability", None)


# --- function names -------------------------------------------------------------------


def test_plain_names_are_kept() -> None:
    names = function_names([("rest", "check_availability"), ("cal-2", "add_event")])
    assert names == {
        ("rest", "check_availability"): "mcp__rest__check_availability",
        ("cal-2", "add_event"): "mcp__cal-2__add_event",
    }


def test_names_are_sanitized_and_bounded() -> None:
    pairs = [("my server", "get.menu"), ("rest", "x" * 100), ("ünï", "tool/with:chars")]
    names = function_names(pairs)
    for name in names.values():
        assert FUNCTION_NAME.match(name), name
        assert name.startswith("mcp__")
    assert names[("my server", "get.menu")].startswith("mcp__my_server__get_menu_")
    assert len(names[("rest", "x" * 100)]) == 64
    assert len(set(names.values())) == len(pairs)


def test_collisions_get_distinct_stable_names() -> None:
    clash = [("a__b", "c"), ("a", "b__c")]  # both read mcp__a__b__c
    lossy = [("a b", "x"), ("a_b", "x"), ("a.b", "x")]
    names = function_names(clash + lossy)
    assert len(set(names.values())) == 5
    assert all(FUNCTION_NAME.match(name) for name in names.values())
    assert names[("a_b", "x")] == "mcp__a_b__x"  # the exact name wins; lossy ones are hashed
    assert names[("a b", "x")] != names[("a.b", "x")]
    assert function_names(list(reversed(clash + lossy))) == names  # order does not matter
    # A lossy name depends only on its own pair.
    assert function_names([("a b", "x")])[("a b", "x")] == names[("a b", "x")]


def test_many_random_pairs_map_one_to_one() -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "_-. /:é"
    pairs = {
        (
            "".join(rng.choices(alphabet, k=rng.randint(1, 40))),
            "".join(rng.choices(alphabet, k=rng.randint(1, 70))),
        )
        for _ in range(2000)
    }
    pairs |= {("s", "t_" + "_" * i) for i in range(30)}  # long runs of underscores
    names = function_names(pairs)
    assert len(set(names.values())) == len(pairs)
    assert all(FUNCTION_NAME.match(name) for name in names.values())


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "wire"),
    [
        (McpError("protocol_error", -32601, "Method not found"), {"type": "protocol_error", "code": -32601}),
        (McpError("protocol_error", None, "bad"), {"type": "protocol_error", "code": -32603}),
        (McpError("tool_execution_error", None, "boom"), {"type": "tool_execution_error"}),
        (McpError("http_error", 401, "Unauthorized"), {"type": "http_error", "code": 401}),
        (McpError("http_error", None, "refused"), {"type": "http_error", "code": 502}),
        (McpError("http_error", None, "slow", timed_out=True), {"type": "http_error", "code": 504}),
    ],
)
def test_error_items_validate_against_openai(error: McpError, wire: dict[str, Any]) -> None:
    item = McpCallItem(
        id="item_1", server_label="rest", name="x", arguments="{}", error=error.to_item_error()
    )
    data = item.to_dict()
    assert data["error"] == {**wire, "message": error.message}
    RealtimeMcpToolCall.model_validate(data)
    assert error.kind == wire["type"]
