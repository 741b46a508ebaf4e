"""The offline echo brain: repeats what the user said, so the voice loop works with no LLM."""

from __future__ import annotations

from collections.abc import AsyncIterator

from palaver.backends.base import ChatEvent, ChatFinished, ChatRequest, ChatUsage, TextDelta


def _last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content.strip()
        if isinstance(content, list):
            texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            return " ".join(t for t in texts if t).strip()
    return ""


class EchoChat:
    """A chat model that answers "You said: …" with the last user message.

    It is named plainly in ``session.created`` logs and startup output so nobody mistakes it for a model.
    """

    name = "echo"
    accepts_images = False

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        heard = _last_user_text(request).rstrip(".!?…")
        answer = f"You said: {heard}." if heard else "I did not catch that. Could you say it again?"
        words = answer.split(" ")
        for i, word in enumerate(words):
            yield TextDelta(word if i == 0 else " " + word)
        yield ChatFinished(
            reason="stop", usage=ChatUsage(input_tokens=len(heard) // 4 + 1, output_tokens=len(words))
        )
