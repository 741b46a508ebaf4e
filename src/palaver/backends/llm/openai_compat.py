"""Any OpenAI-compatible Chat Completions endpoint (Ollama, vLLM, llama.cpp server, hosted) as the brain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
from openai import AsyncOpenAI

from palaver.backends.base import (
    BackendError,
    ChatEvent,
    ChatFinished,
    ChatRequest,
    ChatUsage,
    TextDelta,
    ToolCallDelta,
)


class OpenAICompatibleChat:
    """Streams chat completions from ``base_url`` with the official ``openai`` client."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        accepts_images: bool = True,
    ) -> None:
        self.name = f"openai-compatible:{model}"
        self.model = model
        self.accepts_images = accepts_images
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key or "palaver", timeout=timeout, max_retries=0
        )

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
            params["tool_choice"] = request.tool_choice
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        return params

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        finish_reason = "stop"
        usage: ChatUsage | None = None
        try:
            chunks = await self._client.chat.completions.create(**self._params(request))
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage = ChatUsage(
                        input_tokens=chunk.usage.prompt_tokens, output_tokens=chunk.usage.completion_tokens
                    )
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        yield TextDelta(delta.content)
                    for call in delta.tool_calls or ():
                        fn = call.function
                        yield ToolCallDelta(
                            index=call.index,
                            call_id=call.id,
                            name=fn.name if fn is not None else None,
                            arguments=(fn.arguments or "") if fn is not None else "",
                        )
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        except openai.APIStatusError as exc:
            raise BackendError(
                f"LLM endpoint answered HTTP {exc.status_code}: {exc.message}",
                retryable=exc.status_code >= 500 or exc.status_code == 429,
                code="llm_http_error",
            ) from exc
        except openai.APIConnectionError as exc:
            raise BackendError(
                f"LLM endpoint unreachable: {exc}", retryable=True, code="llm_unreachable"
            ) from exc
        except openai.OpenAIError as exc:
            raise BackendError(f"LLM endpoint failed: {exc}", code="llm_error") from exc
        yield ChatFinished(reason=finish_reason, usage=usage)

    async def aclose(self) -> None:
        await self._client.close()
