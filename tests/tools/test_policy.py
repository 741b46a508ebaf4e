"""Tool-call policies: loading, decisions, budgets, confirmations, refusals and logging."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest

from palaver.redact import configure, pii
from palaver.tools.policy import (
    REASONS,
    Decision,
    PolicyError,
    PolicyState,
    ToolPolicy,
    load_policy,
)

REFUND_POLICY = """
[defaults]
max_calls_per_session = 50
unknown_tools = "allow"

[[tool]]
name = "refund"
max_calls_per_session = 3
[tool.arguments.amount]
required = true
min = 0
max = 10
[tool.arguments.currency]
allowed = ["EUR", "USD"]
"""


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def policy_from(tmp_path: Path, text: str) -> ToolPolicy:
    return load_policy(write(tmp_path, text))


def decide(
    policy: ToolPolicy, tool: str, arguments: dict[str, Any] | str, state: PolicyState | None = None
) -> Decision:
    return policy.decide(tool, arguments, state=state if state is not None else PolicyState())


# --------------------------------------------------------------------------------------------- acceptance


def test_refund_capped_at_10_blocks_50_and_allows_5(tmp_path: Path) -> None:
    policy = policy_from(tmp_path, REFUND_POLICY)
    state = PolicyState("sess_1")

    blocked = policy.decide("refund", '{"amount": 50, "currency": "EUR"}', state=state)
    assert not blocked.allowed
    assert not blocked.needs_confirmation
    assert blocked.reason == "argument_out_of_bounds"
    assert blocked.message == "refund: amount 50 exceeds the maximum of 10"
    assert blocked.rule == "tool[refund].arguments.amount.max"
    refusal = json.loads(blocked.refusal_output())
    assert refusal == {
        "error": "policy_violation",
        "reason": "argument_out_of_bounds",
        "message": "refund: amount 50 exceeds the maximum of 10",
        "allowed": False,
        "needs_confirmation": False,
    }
    assert "maximum of 10" in refusal["message"]

    allowed = policy.decide("refund", '{"amount": 5, "currency": "EUR"}', state=state)
    assert allowed.allowed
    assert allowed.reason == "allowed"
    assert allowed.rule == "tool[refund]"
    assert allowed.tool == "refund"
    with pytest.raises(ValueError):
        allowed.refusal_output()


def test_bounds_are_inclusive_and_exclusive_variants_are_not(tmp_path: Path) -> None:
    policy = policy_from(
        tmp_path,
        """
        [[tool]]
        name = "refund"
        [tool.arguments.amount]
        min = 0
        max = 10
        [tool.arguments.rate]
        exclusive_min = 0
        exclusive_max = 1.5
        """,
    )
    assert decide(policy, "refund", {"amount": 10}).allowed
    assert decide(policy, "refund", {"amount": 0}).allowed
    assert (
        decide(policy, "refund", {"amount": 10.5}).message == "refund: amount 10.5 exceeds the maximum of 10"
    )
    low = decide(policy, "refund", {"amount": -1})
    assert (low.reason, low.message) == (
        "argument_out_of_bounds",
        "refund: amount -1 is below the minimum of 0",
    )
    assert decide(policy, "refund", {"rate": 1.4}).allowed
    high = decide(policy, "refund", {"rate": 1.5})
    assert (high.reason, high.rule) == ("argument_out_of_bounds", "tool[refund].arguments.rate.exclusive_max")
    assert high.message == "refund: rate 1.5 must be less than 1.5"
    assert decide(policy, "refund", {"rate": 0}).rule == "tool[refund].arguments.rate.exclusive_min"


def test_numbers_cannot_sneak_past_bounds(tmp_path: Path) -> None:
    policy = policy_from(tmp_path, REFUND_POLICY)
    # a numeric string is judged by its value
    as_string = decide(policy, "refund", '{"amount": "50"}')
    assert as_string.reason == "argument_out_of_bounds"
    assert as_string.message == 'refund: amount "50" exceeds the maximum of 10'
    # precision is not lost to floats
    assert decide(policy, "refund", '{"amount": 10.000000000000000001}').reason == "argument_out_of_bounds"
    # anything else that is not a finite number is refused
    for raw in ('{"amount": "ten"}', '{"amount": true}', '{"amount": "Infinity"}', '{"amount": [50]}'):
        decision = decide(policy, "refund", raw)
        assert decision.reason == "argument_not_allowed", raw
        assert "must be a number" in decision.message
    # NaN is not JSON at all
    assert decide(policy, "refund", '{"amount": NaN}').reason == "invalid_arguments"


# ---------------------------------------------------------------------------------------- lists, patterns


def test_allow_and_deny_lists(tmp_path: Path) -> None:
    policy = policy_from(
        tmp_path,
        """
        [[tool]]
        name = "transfer"
        [tool.arguments.currency]
        allowed = ["EUR", "USD"]
        [tool.arguments.account]
        denied = ["root", "admin"]
        ignore_case = true
        [tool.arguments.priority]
        allowed = [1, 2, 3]
        """,
    )
    assert decide(policy, "transfer", {"currency": "USD"}).allowed
    gbp = decide(policy, "transfer", {"currency": "GBP"})
    assert gbp.reason == "argument_not_allowed"
    assert gbp.message == 'transfer: currency "GBP" is not one of the allowed values "EUR", "USD"'
    assert gbp.rule == "tool[transfer].arguments.currency.allowed"
    # case matters unless ignore_case
    assert decide(policy, "transfer", {"currency": "eur"}).reason == "argument_not_allowed"

    assert decide(policy, "transfer", {"account": "alice"}).allowed
    for sneaky in ("admin", "Admin", " ROOT ", "ａｄｍｉｎ"):
        denied = decide(policy, "transfer", {"account": sneaky})
        assert denied.reason == "argument_not_allowed", sneaky
        assert denied.rule == "tool[transfer].arguments.account.denied"
        assert denied.message.endswith("is not allowed")
    # a list is not a way around a deny list
    assert decide(policy, "transfer", {"account": ["admin"]}).message == (
        "transfer: account (a list) must be a single value"
    )

    assert decide(policy, "transfer", {"priority": 2}).allowed
    assert decide(policy, "transfer", {"priority": 2.0}).allowed
    assert decide(policy, "transfer", {"priority": "3"}).allowed
    assert decide(policy, "transfer", {"priority": 4}).reason == "argument_not_allowed"


def test_pattern_and_lengths(tmp_path: Path) -> None:
    policy = policy_from(
        tmp_path,
        """
        [[tool]]
        name = "lookup_order"
        [tool.arguments.order_id]
        pattern = "ORD-[0-9]{4}"
        [tool.arguments.note]
        max_length = 5
        [tool.arguments.tags]
        min_length = 1
        max_length = 2
        """,
    )
    assert decide(policy, "lookup_order", {"order_id": "ORD-1234"}).allowed
    bad = decide(policy, "lookup_order", {"order_id": "ORD-1234; DROP TABLE"})  # the whole value must match
    assert bad.reason == "argument_not_allowed"
    assert (
        bad.message == 'lookup_order: order_id "ORD-1234; DROP TABLE" does not match the pattern ORD-[0-9]{4}'
    )
    assert decide(policy, "lookup_order", {"order_id": 1234}).message.endswith("must be a string")

    long = decide(policy, "lookup_order", {"note": "too long"})
    assert long.reason == "argument_out_of_bounds"
    assert long.message == "lookup_order: note has 8 characters, more than the maximum of 5"
    assert decide(policy, "lookup_order", {"tags": ["a", "b", "c"]}).rule == (
        "tool[lookup_order].arguments.tags.max_length"
    )
    assert decide(policy, "lookup_order", {"tags": []}).reason == "argument_out_of_bounds"
    assert decide(policy, "lookup_order", {"tags": ["a"]}).allowed


# --------------------------------------------------------------------------------------------- names


def test_glob_names_and_exact_names_win(tmp_path: Path) -> None:
    policy = policy_from(
        tmp_path,
        """
        [[tool]]
        name = "delete_*"
        deny = true

        [[tool]]
        name = "delete_draft"
        """,
    )
    denied = decide(policy, "delete_user", {})
    assert not denied.allowed
    assert denied.reason == "denied_tool"
    assert denied.rule == "tool[delete_*].deny"
    assert denied.message == "delete_user: this tool is not allowed"
    assert json.loads(denied.refusal_output())["reason"] == "denied_tool"
    # the exact rule wins over the earlier glob
    assert decide(policy, "delete_draft", {}).allowed
    # globs match the whole name, case-sensitively
    assert decide(policy, "undelete_user", {}).allowed
    assert decide(policy, "DELETE_user", {}).allowed
    assert policy.rule_for("delete_x") is not None and policy.rule_for("get_x") is None


def test_mcp_tool_names(tmp_path: Path) -> None:
    policy = policy_from(
        tmp_path,
        """
        [[tool]]
        name = "mcp:crm:delete_contact"
        deny = true

        [[tool]]
        name = "mcp:crm:*"
        max_calls_per_session = 1
        [tool.arguments."customer.id"]
        pattern = "C[0-9]+"

        [[tool]]
        name = "mcp:*:search"
        """,
    )
    state = PolicyState()
    assert decide(policy, "mcp:crm:delete_contact", {}).reason == "denied_tool"
    bad = decide(policy, "mcp:crm:get_contact", {"customer": {"id": "x1"}}, state)
    assert bad.rule == "tool[mcp:crm:*].arguments.customer.id.pattern"
    assert bad.message.startswith("mcp:crm:get_contact: customer.id")
    ok = decide(policy, "mcp:crm:get_contact", {"customer": {"id": "C42"}}, state)
    assert ok.allowed and ok.rule == "tool[mcp:crm:*]"
    state.record("mcp:crm:get_contact", ok)
    assert decide(policy, "mcp:crm:get_contact", {}, state).reason == "budget_exhausted"
    assert decide(policy, "mcp:docs:search", {}).rule == "tool[mcp:*:search]"
    assert decide(policy, "crm:get_contact", {}).rule is None


def test_unknown_tools_deny(tmp_path: Path) -> None:
    policy = policy_from(
        tmp_path,
        """
        [defaults]
        unknown_tools = "deny"
        [[tool]]
        name = "get_weather"
        """,
    )
    assert decide(policy, "get_weather", {"city": "Paris"}).allowed
    unknown = decide(policy, "launch_missiles", {})
    assert not unknown.allowed
    assert unknown.reason == "unknown_tool"
    assert unknown.rule == "defaults.unknown_tools"
    assert unknown.message == "launch_missiles: this tool is not allowed here"


def test_unknown_tools_allowed_by_default(tmp_path: Path) -> None:
    policy = policy_from(tmp_path, '[[tool]]\nname = "refund"\n')
    decision = decide(policy, "get_weather", {})
    assert decision.allowed and decision.rule is None


# --------------------------------------------------------------------------------------------- budgets


def test_per_tool_budget(tmp_path: Path) -> None:
    policy = policy_from(tmp_path, REFUND_POLICY)
    state = PolicyState()
    for _ in range(3):
        decision = policy.decide("refund", {"amount": 1}, state=state)
        assert decision.allowed
        state.record("refund", decision)
    assert state.calls("refund") == 3
    fourth = policy.decide("refund", {"amount": 1}, state=state)
    assert not fourth.allowed
    assert fourth.reason == "budget_exhausted"
    assert fourth.rule == "tool[refund].max_calls_per_session"
    assert fourth.message == "refund: the limit of 3 calls per session has been reached"
    # other tools are unaffected; a new session starts afresh
    assert policy.decide("get_weather", {}, state=state).allowed
    assert policy.decide("refund", {"amount": 1}, state=PolicyState()).allowed


def test_total_budget_across_tools(tmp_path: Path) -> None:
    policy = policy_from(tmp_path, "[defaults]\nmax_calls_per_session = 2\n")
    state = PolicyState()
    for tool in ("a", "b"):
        decision = policy.decide(tool, {}, state=state)
        assert decision.allowed
        state.record(tool, decision)
    assert state.total_calls == 2
    third = policy.decide("c", {}, state=state)
    assert third.reason == "budget_exhausted"
    assert third.rule == "defaults.max_calls_per_session"
    assert third.message == "c: the session's limit of 2 tool calls has been reached"


def test_blocked_calls_are_not_counted(tmp_path: Path) -> None:
    policy = policy_from(tmp_path, REFUND_POLICY)
    state = PolicyState()
    blocked = policy.decide("refund", {"amount": 50}, state=state)
    state.record("refund", blocked)
    assert state.calls("refund") == 0 and state.total_calls == 0
    with pytest.raises(ValueError):
        state.record("other_tool", blocked)


def test_allow_all_allows_everything_and_counts() -> None:
    policy = ToolPolicy.allow_all()
    state = PolicyState()
    for _ in range(100):
        decision = policy.decide("anything", '{"x": 1e300}', state=state)
        assert decision.allowed and decision.rule is None
        state.record("anything", decision)
    assert state.calls("anything") == 100 and state.total_calls == 100
    # malformed arguments are refused even without a policy
    assert policy.decide("anything", "{", state=state).reason == "invalid_arguments"


# --------------------------------------------------------------------------------------------- confirmation


def test_confirmation_flow(tmp_path: Path) -> None:
    policy = policy_from(
        tmp_path,
        """
        [[tool]]
        name = "refund"
        confirm = true
        [tool.arguments.amount]
        max = 10
        """,
    )
    state = PolicyState()
    raw = '{"amount": 5, "order": "A1"}'

    first = policy.decide("refund", raw, state=state)
    assert not first.allowed
    assert first.needs_confirmation
    assert first.reason == "confirmation_required"
    assert first.rule == "tool[refund].confirm"
    refusal = json.loads(first.refusal_output())
    assert refusal["needs_confirmation"] is True and refusal["reason"] == "confirmation_required"

    # a confirmation is for those exact arguments only
    state.confirm("refund", {"amount": 6, "order": "A1"})
    assert policy.decide("refund", raw, state=state).needs_confirmation

    # same values in another form (key order, 5.0, a dict) are the same arguments
    state.confirm("refund", {"order": "A1", "amount": 5.0})
    assert state.is_confirmed("refund", raw)
    second = policy.decide("refund", raw, state=state)
    assert second.allowed and not second.needs_confirmation
    state.record("refund", second)

    # a confirmation is used up by the call it allowed
    assert not state.is_confirmed("refund", raw)
    assert policy.decide("refund", raw, state=state).needs_confirmation

    # confirming never lifts the other limits
    state.confirm("refund", {"amount": 50})
    assert policy.decide("refund", {"amount": 50}, state=state).reason == "argument_out_of_bounds"

    with pytest.raises(ValueError):
        state.confirm("refund", "not json")


# --------------------------------------------------------------------------------------------- arguments


def test_missing_required_argument(tmp_path: Path) -> None:
    policy = policy_from(tmp_path, REFUND_POLICY)
    for arguments in ({"currency": "EUR"}, {"amount": None}, ""):
        missing = decide(policy, "refund", arguments)
        assert missing.reason == "missing_argument", arguments
        assert missing.message == "refund: the required argument amount is missing"
        assert missing.rule == "tool[refund].arguments.amount.required"
    # optional arguments may be absent
    assert decide(policy, "refund", {"amount": 1}).allowed


def test_dotted_paths(tmp_path: Path) -> None:
    policy = policy_from(
        tmp_path,
        """
        [[tool]]
        name = "place_order"
        [tool.arguments."customer.id"]
        required = true
        pattern = "C[0-9]+"
        [tool.arguments."items.*.quantity"]
        required = true
        max = 5
        [tool.arguments."shipping.address.country"]
        allowed = ["FR", "DE"]
        """,
    )
    ok = {"customer": {"id": "C7"}, "items": [{"quantity": 1}, {"quantity": 5}]}
    assert decide(policy, "place_order", ok).allowed

    no_id = decide(policy, "place_order", {"customer": {"name": "Ann"}, "items": []})
    assert no_id.reason == "missing_argument"
    assert no_id.message == "place_order: the required argument customer.id is missing"
    assert decide(policy, "place_order", {"items": []}).message.endswith("customer.id is missing")

    too_many = decide(
        policy, "place_order", {"customer": {"id": "C7"}, "items": [{"quantity": 1}, {"quantity": 9}]}
    )
    assert too_many.reason == "argument_out_of_bounds"
    assert too_many.message == "place_order: items.1.quantity 9 exceeds the maximum of 5"
    assert too_many.rule == "tool[place_order].arguments.items.*.quantity.max"

    no_quantity = decide(policy, "place_order", {"customer": {"id": "C7"}, "items": [{"sku": "x"}]})
    assert no_quantity.message == "place_order: the required argument items.0.quantity is missing"

    abroad = {"customer": {"id": "C7"}, "items": [], "shipping": {"address": {"country": "US"}}}
    assert (
        decide(policy, "place_order", abroad).rule
        == "tool[place_order].arguments.shipping.address.country.allowed"
    )


def test_invalid_json_arguments_are_a_decision(tmp_path: Path) -> None:
    policy = policy_from(tmp_path, REFUND_POLICY)
    invalid = decide(policy, "refund", '{"amount": 5,')
    assert not invalid.allowed and not invalid.needs_confirmation
    assert invalid.reason == "invalid_arguments"
    assert invalid.rule is None
    assert invalid.message.startswith("refund: the arguments are not valid JSON")
    refusal = json.loads(invalid.refusal_output())
    assert refusal["error"] == "policy_violation" and refusal["reason"] == "invalid_arguments"

    not_object = decide(policy, "refund", "[5]")
    assert not_object.reason == "invalid_arguments"
    assert not_object.message == "refund: the arguments must be a JSON object, got a list"
    # duplicate keys could mean one value to the policy and another to the tool
    duplicate = decide(policy, "refund", '{"amount": 5, "amount": 50}')
    assert duplicate.reason == "invalid_arguments" and "duplicate key" in duplicate.message
    deep = "[" * 100 + "]" * 100
    assert decide(policy, "refund", '{"amount": 1, "x": ' + deep + "}").reason == "invalid_arguments"


def test_denied_tool_is_reported_before_malformed_arguments(tmp_path: Path) -> None:
    policy = policy_from(tmp_path, '[[tool]]\nname = "rm"\ndeny = true\n')
    assert decide(policy, "rm", "{oops").reason == "denied_tool"


# --------------------------------------------------------------------------------------------- loading


def test_json_policy_file(tmp_path: Path) -> None:
    data = {
        "defaults": {"unknown_tools": "deny"},
        "tool": [{"name": "refund", "arguments": {"amount": {"max": 10}}}],
    }
    path = write(tmp_path, json.dumps(data), "policy.json")
    policy = load_policy(path)
    assert policy.source == str(path)
    assert decide(policy, "refund", {"amount": 50}).message == "refund: amount 50 exceeds the maximum of 10"
    assert decide(policy, "other", {}).reason == "unknown_tool"


@pytest.mark.parametrize(
    ("text", "rule", "fragments"),
    [
        ("[defaults]\nmax_call_per_session = 5\n", "defaults", ["unknown key 'max_call_per_session'"]),
        (
            '[[tool]]\nname = "refund"\nconfirmed = true\n',
            "tool[refund]",
            ["unknown key 'confirmed'", "confirm"],
        ),
        (
            '[[tool]]\nname = "refund"\n[tool.arguments.amount]\nmaximum = 10\n',
            "tool[refund]",
            ["unknown key 'maximum' in arguments.amount"],
        ),
        (
            '[[tool]]\nname = "refund"\nmax_calls_per_session = "3"\n',
            "tool[refund]",
            ["max_calls_per_session", '"3"'],
        ),
        ('[[tool]]\nname = "refund"\ndeny = "yes"\n', "tool[refund]", ["deny must be true or false"]),
        (
            '[[tool]]\nname = "refund"\n[tool.arguments.amount]\nmax = "ten"\n',
            "tool[refund]",
            ["arguments.amount.max must be a finite number", '"ten"'],
        ),
        (
            '[[tool]]\nname = "refund"\n[tool.arguments.currency]\nallowed = "EUR"\n',
            "tool[refund]",
            ["arguments.currency.allowed must be a list"],
        ),
        (
            '[[tool]]\nname = "refund"\n[tool.arguments.order]\npattern = "ORD-[0-9"\n',
            "tool[refund]",
            ["arguments.order.pattern", "not a valid regular expression"],
        ),
        (
            '[[tool]]\nname = "refund"\n[tool.arguments.amount]\nmin = 10\nmax = 1\n',
            "tool[refund]",
            ["minimum 10 exceeds the maximum 1"],
        ),
        ('[defaults]\nunknown_tools = "block"\n', "defaults", ['"allow" or "deny"', '"block"']),
        ("[[tool]]\ndeny = true\n", "tool #1", ["name must be a non-empty string"]),
        ('[[tool]]\nname = "a"\n[[tool]]\nname = "a"\n', "tool[a]", ["second rule for the same name"]),
        ("tools = []\n", None, ["unknown key 'tools'"]),
    ],
)
def test_bad_policy_files(tmp_path: Path, text: str, rule: str | None, fragments: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    error = caught.value
    message = str(error)
    assert message.startswith(f"{path}: ")
    assert error.source == str(path)
    assert error.rule == rule
    if rule is not None:
        assert f"{path}: {rule}: " in message
    for fragment in fragments:
        assert fragment in message


def test_unreadable_or_malformed_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PolicyError, match=r"nope\.toml: cannot read the policy file"):
        load_policy(missing)
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(write(tmp_path, "[[tool]\nname = 1\n"))
    with pytest.raises(PolicyError, match="not valid JSON"):
        load_policy(write(tmp_path, "{", "policy.json"))
    with pytest.raises(PolicyError, match="top level must be an object"):
        load_policy(write(tmp_path, "[]", "policy.json"))
    with pytest.raises(PolicyError, match=r"unsupported file type '\.yaml'"):
        load_policy(write(tmp_path, "tool: []", "policy.yaml"))


# --------------------------------------------------------------------------------------------- logging


def test_every_decision_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    policy = policy_from(tmp_path, REFUND_POLICY)
    state = PolicyState("sess_state")
    with caplog.at_level(logging.INFO, logger="palaver.tools.policy"):
        policy.decide("refund", {"amount": 5}, state=state, session_id="sess_42")
        policy.decide("refund", {"amount": 50}, state=state)

    records = [r for r in caplog.records if r.name == "palaver.tools.policy"]
    assert len(records) == 2
    allowed, blocked = records

    assert allowed.levelno == logging.INFO
    assert (
        allowed.getMessage()
        == "tool call allowed: tool=refund reason=allowed rule=tool[refund] session=sess_42"
    )
    assert (allowed.tool, allowed.reason, allowed.rule, allowed.session_id) == (  # type: ignore[attr-defined]
        "refund",
        "allowed",
        "tool[refund]",
        "sess_42",
    )

    assert blocked.levelno == logging.WARNING
    text = blocked.getMessage()
    assert "tool call blocked: tool=refund reason=argument_out_of_bounds" in text
    assert "rule=tool[refund].arguments.amount.max" in text
    assert "session=sess_state" in text  # the state's session id when none is passed
    # The refusal quotes the arguments (personal data): the log has its hash unless PALAVER_LOG_PII.
    assert text.endswith(": " + pii("refund: amount 50 exceeds the maximum of 10"))
    assert "amount 50" not in text
    assert blocked.session_id == "sess_state"  # type: ignore[attr-defined]
    assert blocked.allowed is False  # type: ignore[attr-defined]


def test_blocked_arguments_are_logged_as_they_are_with_log_pii(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = policy_from(tmp_path, REFUND_POLICY)
    configure(log_pii=True)
    try:
        with caplog.at_level(logging.INFO, logger="palaver.tools.policy"):
            policy.decide("refund", {"amount": 50}, state=PolicyState("sess_pii"))
    finally:
        configure(log_pii=False)
    (blocked,) = [r for r in caplog.records if r.name == "palaver.tools.policy"]
    assert blocked.getMessage().endswith("refund: amount 50 exceeds the maximum of 10")


def test_reasons_are_the_documented_codes() -> None:
    assert {
        "allowed",
        "denied_tool",
        "unknown_tool",
        "argument_out_of_bounds",
        "argument_not_allowed",
        "missing_argument",
        "invalid_arguments",
        "budget_exhausted",
        "confirmation_required",
    } == REASONS
