"""The tools a session runs itself: remote MCP servers, client approvals, and the operator's policy.

Function tools are run by the client; this is what the server answers on its own after a round
of the brain — refused calls, MCP calls (approved first when asked) — and what the brain is
offered (function tools, plus each allowed MCP tool as a function).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from palaver.backends.base import ChatTool
from palaver.egress import EgressPolicy
from palaver.engine.context import mcp_function_name
from palaver.protocol.errors import ProtocolError
from palaver.protocol.ids import new_id
from palaver.protocol.items import (
    ConversationItem,
    FunctionCallOutputItem,
    McpApprovalRequestItem,
    McpApprovalResponseItem,
    McpListToolsItem,
    McpToolExecutionError,
)
from palaver.protocol.server_events import (
    ConversationItemAddedEvent,
    ConversationItemDoneEvent,
    ErrorDetail,
    ErrorEvent,
    McpListToolsCompletedEvent,
    McpListToolsFailedEvent,
    McpListToolsInProgressEvent,
    ServerEvent,
)
from palaver.protocol.tools import McpTool
from palaver.redact import scrub_urls
from palaver.session.conversation import Conversation
from palaver.session.response_run import McpCallSlot, ResponseRun
from palaver.tools.mcp import McpError, McpManager
from palaver.tools.policy import Decision, PolicyState, ToolPolicy

log = logging.getLogger(__name__)


class SessionTools:
    def __init__(
        self,
        *,
        conversation: Conversation,
        emit: Callable[[ServerEvent], None],
        policy: ToolPolicy,
        session_id: str,
        mcp_timeout: float,
        mcp_connect_timeout: float,
        approval_timeout: float,
        mcp_egress: EgressPolicy,
    ) -> None:
        self._conversation = conversation
        self._mcp_egress = mcp_egress
        self._emit = emit
        self._policy = policy
        self._policy_state = PolicyState(session_id=session_id)
        self._mcp: McpManager | None = None
        self._mcp_sync: asyncio.Task[None] | None = None
        self._mcp_synced: list[McpTool] = []
        self._mcp_timeout = mcp_timeout
        self._mcp_connect_timeout = mcp_connect_timeout
        self._approval_timeout = approval_timeout
        self._approval_waiters: dict[str, asyncio.Future[McpApprovalResponseItem]] = {}
        self._verdicts: dict[str, McpApprovalResponseItem] = {}  # answers that came before they were awaited

    async def aclose(self) -> None:
        if self._mcp_sync is not None:
            self._mcp_sync.cancel()
        if self._mcp is not None:
            await self._mcp.aclose()

    # ------------------------------------------------------------------ approvals

    def check_approval_response(self, item: McpApprovalResponseItem, event_id: str | None) -> None:
        """An approval response must answer an approval request of this conversation."""
        request = self._conversation.get(
            item.approval_request_id, event_id=event_id, param="item.approval_request_id"
        )
        if not isinstance(request, McpApprovalRequestItem):
            raise ProtocolError(
                f"Item '{item.approval_request_id}' is not an approval request.",
                code="invalid_value",
                param="item.approval_request_id",
            )

    def approval_arrived(self, item: McpApprovalResponseItem) -> None:
        waiter = self._approval_waiters.get(item.approval_request_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(item)
        else:
            self._verdicts[item.approval_request_id] = item

    # ------------------------------------------------------------------ after a round of the brain

    async def answer(self, run: ResponseRun) -> list[ConversationItem]:
        """Answer what the server must answer itself after a round of the brain: function calls
        the policy refused. Returns the result items, in the conversation when the response is."""
        results: list[ConversationItem] = []
        for call, decision in run.refused:
            output = FunctionCallOutputItem(
                id=new_id("item"), call_id=call.call_id or call.id or "", output=decision.refusal_output()
            )
            if run.response.conversation_id is not None:
                previous = self._conversation.insert(output, None)
                self._emit(ConversationItemAddedEvent(previous_item_id=previous, item=output))
                self._emit(ConversationItemDoneEvent(previous_item_id=previous, item=output))
            results.append(output)
        run.refused.clear()
        for slot in list(run.mcp_calls):
            results.extend(await self._run_mcp_call(run, slot))
        run.mcp_calls.clear()
        return results

    async def _run_mcp_call(self, run: ResponseRun, slot: McpCallSlot) -> list[ConversationItem]:
        """Approve (if asked), check against the policy, call, and record the outcome."""
        done: list[ConversationItem] = []
        if slot.approval is not None:
            verdict = await self._approval(slot.approval.id or "")
            done.append(verdict)
            if not verdict.approve or run.closed:
                return done  # not called; the brain sees the denial
            run.announce_mcp_call(slot, approval_request_id=slot.approval.id)
            run.mcp_arguments_done(slot)
        assert slot.item is not None
        tool = f"mcp:{slot.server_label}:{slot.name}"
        decision = self._policy.decide(tool, slot.arguments, state=self._policy_state)
        if decision.needs_confirmation and slot.approval is not None:
            self._policy_state.confirm(tool, slot.arguments)  # the approval was the confirmation
            decision = self._policy.decide(tool, slot.arguments, state=self._policy_state)
        done.append(slot.item)
        if not decision.allowed:
            run.mcp_call_done(
                slot, output=None, error=McpToolExecutionError(message=decision.refusal_output())
            )
            return done
        self._policy_state.record(tool, decision)
        run.mcp_call_in_progress(slot)
        assert self._mcp is not None
        try:
            output = await self._mcp.call(
                slot.server_label, slot.name, slot.arguments, timeout=self._mcp_timeout
            )
        except McpError as exc:
            log.warning("MCP call %s failed: %s", tool, scrub_urls(str(exc)))
            run.mcp_call_done(slot, output=None, error=exc.to_item_error())
        else:
            run.mcp_call_done(slot, output=output, error=None)
        return done

    async def _approval(self, request_id: str) -> McpApprovalResponseItem:
        """The client's answer to an approval request; no answer in time counts as a denial."""
        verdict = self._verdicts.pop(request_id, None)
        if verdict is not None:
            return verdict
        waiter: asyncio.Future[McpApprovalResponseItem] = asyncio.get_running_loop().create_future()
        self._approval_waiters[request_id] = waiter
        try:
            async with asyncio.timeout(self._approval_timeout):
                return await waiter
        except TimeoutError:
            seconds = f"{self._approval_timeout:g}"
            return McpApprovalResponseItem(
                approval_request_id=request_id, approve=False, reason=f"No answer within {seconds} s."
            )
        finally:
            self._approval_waiters.pop(request_id, None)

    # ------------------------------------------------------------------ MCP servers

    def sync(self, tools: list[Any]) -> None:
        """Follow the session's ``mcp`` tools: list new servers' tools, drop removed ones."""
        configs = [t for t in tools if isinstance(t, McpTool)]
        if configs == self._mcp_synced or (not configs and self._mcp is None):
            return
        self._mcp_synced = configs
        previous = self._mcp_sync
        self._mcp_sync = asyncio.create_task(self._sync_mcp(configs, previous), name="mcp-sync")

    async def _sync_mcp(self, configs: list[McpTool], previous: asyncio.Task[None] | None) -> None:
        """List the servers' tools, announced as OpenAI does: ``mcp_list_tools`` item added,
        ``mcp_list_tools.in_progress``, then ``.completed`` or ``.failed`` and the item done."""
        if previous is not None:
            await asyncio.wait([previous])
        if self._mcp is None:
            self._mcp = McpManager(egress=self._mcp_egress, open_timeout=self._mcp_connect_timeout)
        announced: dict[str, McpListToolsItem] = {}
        for config in configs:
            item = McpListToolsItem(id=new_id("item"), server_label=config.server_label, tools=[])
            before = self._conversation.insert(item, None)
            self._emit(ConversationItemAddedEvent(previous_item_id=before, item=item))
            self._emit(McpListToolsInProgressEvent(item_id=item.id or ""))
            announced[config.server_label] = item
        for result in await self._mcp.sync(configs):
            item = announced[result.server_label]
            if result.ok:
                item.tools = list(result.tools or [])
                self._emit(McpListToolsCompletedEvent(item_id=item.id or ""))
            else:
                log.warning("MCP server %r: %s", result.server_label, scrub_urls(str(result.error)))
                self._emit(McpListToolsFailedEvent(item_id=item.id or ""))
                if result.error is not None and result.error.refused:
                    # Refused before connecting (egress policy, a header): say why, it stays refused.
                    detail = ErrorDetail(code="invalid_value", message=result.error.message)
                    self._emit(ErrorEvent(error=detail))
            if item.id is not None and item.id in self._conversation:
                self._emit(
                    ConversationItemDoneEvent(
                        previous_item_id=self._conversation.previous_of(item.id or ""), item=item
                    )
                )

    async def ready(self) -> None:
        if self._mcp_sync is not None and not self._mcp_sync.done():
            await asyncio.wait([self._mcp_sync])

    def function_name(self, server_label: str, tool: str) -> str:
        name = self._mcp.function_name(server_label, tool) if self._mcp is not None else None
        return name or mcp_function_name(server_label, tool)

    def mcp_tool(self, function_name: str) -> tuple[str, str, bool] | None:
        if self._mcp is None:
            return None
        resolved = self._mcp.resolve(function_name)
        if resolved is None:
            return None
        label, tool = resolved
        return label, tool, self._mcp.needs_approval(label, tool)

    def llm_tools(self, tools: list[Any]) -> list[ChatTool]:
        out = _chat_tools(tools)
        labels = {t.server_label for t in tools if isinstance(t, McpTool)}
        if self._mcp is not None and labels:
            for tool in self._mcp.function_tools():
                resolved = self._mcp.resolve(tool.name or "")
                if resolved is not None and resolved[0] in labels:
                    out.append(ChatTool(tool.name or "", tool.description or "", tool.parameters or {}))
        return out

    def llm_tool_choice(self, choice: Any) -> str | dict[str, Any]:
        if getattr(choice, "type", None) == "mcp":
            name = getattr(choice, "name", None)
            function = self._mcp.function_name(choice.server_label, name) if self._mcp and name else None
            return {"type": "function", "function": {"name": function}} if function else "required"
        return _chat_tool_choice(choice)

    def judge(self, tool: str, arguments: str) -> Decision | None:
        """The operator's policy on one call; an allowed call is counted."""
        decision = self._policy.decide(tool, arguments, state=self._policy_state)
        self._policy_state.record(tool, decision)
        return decision


def _chat_tools(tools: list[Any]) -> list[ChatTool]:
    out: list[ChatTool] = []
    for tool in tools:
        if getattr(tool, "type", None) == "function":
            out.append(
                ChatTool(
                    name=tool.name or "",
                    description=tool.description or "",
                    parameters=tool.parameters or {"type": "object", "properties": {}},
                )
            )
    return out


def _chat_tool_choice(choice: Any) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice
    name = getattr(choice, "name", None)
    if getattr(choice, "type", None) == "function" and name:
        return {"type": "function", "function": {"name": name}}
    return "auto"
