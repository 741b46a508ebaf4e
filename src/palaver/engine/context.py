"""Render conversation items as an OpenAI Chat Completions message list (what the brain sees)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from palaver.protocol.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudioContent,
    InputImageContent,
    InputTextContent,
    MessageItem,
    OutputAudioContent,
    OutputTextContent,
)

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


def build_messages(instructions: str, items: Sequence[ConversationItem]) -> list[dict[str, Any]]:
    """Chat messages for ``items``.

    Each tool call is answered right after the assistant message that made it, with its output
    wherever that item sits in the conversation (asynchronous calls), or a "pending" placeholder,
    so the history is always valid for the Chat Completions API.
    """
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    outputs = {i.call_id: i.output for i in items if isinstance(i, FunctionCallOutputItem)}
    placed: set[str] = set()
    answers: list[dict[str, Any]] = []  # tool messages owed after the current assistant tool_calls message

    def settle() -> None:
        messages.extend(answers)
        answers.clear()

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
            call_id = item.call_id or item.id or ""
            call = {
                "id": call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and (answers or "tool_calls" not in last):
                last.setdefault("tool_calls", []).append(call)
            else:
                settle()
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            answers.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": outputs.get(call_id, PENDING_CALL_OUTPUT),
                }
            )
            placed.add(call_id)
        elif isinstance(item, FunctionCallOutputItem) and item.call_id not in placed:
            # An output whose call is not in the context: tell the brain as plain text.
            settle()
            messages.append({"role": "user", "content": f"[function result {item.call_id}] {item.output}"})
    settle()
    return messages


def _system_text(item: MessageItem) -> str:
    return " ".join(p.text for p in item.content if isinstance(p, InputTextContent))
