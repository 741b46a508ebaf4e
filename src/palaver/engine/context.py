"""Render conversation items as an OpenAI Chat Completions message list (what the brain sees)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from palaver.protocol.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudioContent,
    InputImageContent,
    InputTextContent,
    McpApprovalRequestItem,
    McpApprovalResponseItem,
    McpCallItem,
    MessageItem,
    OutputAudioContent,
    OutputTextContent,
)
from palaver.tools.mcp_names import function_names

#: What the brain is told for a call whose output has not arrived yet (the history must stay valid).
PENDING_CALL_OUTPUT = '{"status": "pending", "note": "The result of this call has not arrived yet."}'


def _user_content(item: MessageItem) -> str | list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in item.content:
        if isinstance(part, InputTextContent):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, InputAudioContent):
            if part.transcript:
                parts.append({"type": "text", "text": part.transcript})
        elif isinstance(part, InputImageContent):
            parts.append({"type": "image_url", "image_url": {"url": part.image_url, "detail": part.detail}})
    if all(p["type"] == "text" for p in parts):
        return " ".join(p["text"] for p in parts)
    return parts


def _assistant_text(item: MessageItem) -> str:
    texts: list[str] = []
    for part in item.content:
        if isinstance(part, OutputTextContent):
            texts.append(part.text)
        elif isinstance(part, OutputAudioContent) and part.transcript:
            texts.append(part.transcript)
    return "".join(texts)


def mcp_function_name(server_label: str, tool: str) -> str:
    """How the brain sees an MCP tool when no session names it: ``mcp__<label>__<tool>``."""
    return function_names([(server_label, tool)])[(server_label, tool)]


McpNamer = Callable[[str, str], str]


def _call_message(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _pair_calls(items: Sequence[ConversationItem]) -> tuple[dict[int, tuple[str, str]], set[int]]:
    """Each function call's id for the brain and its output; and the outputs so placed.

    Keys are ``id()`` of the items. The k-th call with a ``call_id`` gets the k-th output with it,
    wherever it sits. The brain sees the ``call_id`` when no other call has it (Palaver's own
    ``call_…`` ids always), else the call's item id: a client that repeats a ``call_id`` must not
    get one call answered with another's output.
    """
    calls: dict[str, list[FunctionCallItem]] = {}
    outputs: dict[str, list[FunctionCallOutputItem]] = {}
    for item in items:
        if isinstance(item, FunctionCallItem):
            calls.setdefault(item.call_id or item.id or "", []).append(item)
        elif isinstance(item, FunctionCallOutputItem):
            outputs.setdefault(item.call_id, []).append(item)
    paired: dict[int, tuple[str, str]] = {}
    placed: set[int] = set()
    for key, same in calls.items():
        answers = outputs.get(key, [])
        for n, call in enumerate(same):
            brain_id = key if len(same) == 1 else (call.id or f"{key}#{n + 1}")
            answer = answers[n] if n < len(answers) else None
            if answer is not None:
                placed.add(id(answer))
            paired[id(call)] = (brain_id, answer.output if answer is not None else PENDING_CALL_OUTPUT)
    return paired, placed


def build_messages(
    instructions: str, items: Sequence[ConversationItem], *, mcp_name: McpNamer = mcp_function_name
) -> list[dict[str, Any]]:
    """Chat messages for ``items``.

    Each tool call is answered right after the assistant message that made it, with its output
    wherever that item sits in the conversation (asynchronous calls), or a "pending" placeholder,
    so the history is always valid for the Chat Completions API. MCP calls are shown as function
    calls (``mcp_name``) with their output or error; a denied approval request as a call whose
    answer is the denial.
    """
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    calls, placed_outputs = _pair_calls(items)
    approved_calls = {
        i.approval_request_id for i in items if isinstance(i, McpCallItem) and i.approval_request_id
    }
    verdicts = {i.approval_request_id: i for i in items if isinstance(i, McpApprovalResponseItem)}
    answers: list[dict[str, Any]] = []  # tool messages owed after the current assistant tool_calls message

    def settle() -> None:
        messages.extend(answers)
        answers.clear()

    def add_call(call: dict[str, Any], answer: str) -> None:
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and (answers or "tool_calls" not in last):
            last.setdefault("tool_calls", []).append(call)
        else:
            settle()
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        answers.append({"role": "tool", "tool_call_id": call["id"], "content": answer})

    for item in items:
        if isinstance(item, MessageItem):
            settle()
            content: str | list[dict[str, Any]]
            if item.role == "assistant":
                content = _assistant_text(item)
            elif item.role == "user":
                content = _user_content(item)
            else:
                content = _system_text(item)
            if content:
                messages.append({"role": item.role, "content": content})
        elif isinstance(item, FunctionCallItem):
            brain_id, output = calls[id(item)]
            add_call(_call_message(brain_id, item.name, item.arguments), output)
        elif isinstance(item, FunctionCallOutputItem) and id(item) not in placed_outputs:
            # An output whose call is not in the context: tell the brain as plain text.
            settle()
            messages.append({"role": "user", "content": f"[function result {item.call_id}] {item.output}"})
        elif isinstance(item, McpCallItem):
            name = mcp_name(item.server_label, item.name)
            answer = item.output if item.error is None else json.dumps({"error": item.error.message})
            add_call(_call_message(item.id or "", name, item.arguments), answer or PENDING_CALL_OUTPUT)
        elif isinstance(item, McpApprovalRequestItem) and item.id not in approved_calls:
            verdict = verdicts.get(item.id or "")
            if verdict is None:
                answer = '{"status": "awaiting the user\'s approval"}'
            elif verdict.approve:
                answer = PENDING_CALL_OUTPUT
            else:
                answer = json.dumps({"error": "denied by the user", "reason": verdict.reason or ""})
            add_call(
                _call_message(item.id or "", mcp_name(item.server_label, item.name), item.arguments), answer
            )
    settle()
    return messages


def _system_text(item: MessageItem) -> str:
    return " ".join(p.text for p in item.content if isinstance(p, InputTextContent))
