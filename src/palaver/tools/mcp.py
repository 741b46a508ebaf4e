"""The MCP client of a session: its remote MCP servers, their tools, and calls to them.

    manager = McpManager(egress=EgressPolicy.from_settings(settings))
    results = await manager.sync(session_tools)   # after session.update: one result per mcp tool
    for result in results:                         # → mcp_list_tools items (.completed / .failed)
        ...result.server_label, result.tools, result.error
    manager.function_tools()                       # what the model sees: mcp__<label>__<tool> functions
    label, tool = manager.resolve(function_name)   # a model's call back to its server and tool
    if manager.needs_approval(label, tool): ...    # require_approval
    output = await manager.call(label, tool, arguments, timeout=30.0)   # or McpError
    await manager.aclose()

Errors are ``McpError`` with the ``mcp_call`` error type as ``kind`` (``to_item_error()``
gives the item's ``error``); ``refused`` ones are configurations refused before connecting
(the egress policy, a forbidden header). Every connection is made under the ``egress``
policy given (see ``palaver.egress``). A server that is down, slow or dies fails its own results and
calls only; nothing here raises anything else or blocks longer than the timeout given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from palaver.egress import EgressPolicy
from palaver.protocol.items import McpListToolsItem, McpToolInfo
from palaver.protocol.tools import FunctionTool, McpTool
from palaver.redact import redact_urls

from . import mcp_filters
from .mcp_connection import McpServerConnection, McpTransport, call_result_text, tool_info, wait_abandoned
from .mcp_errors import JSONRPC_INVALID_PARAMS, McpError, McpErrorKind
from .mcp_names import function_names

__all__ = [
    "McpError",
    "McpErrorKind",
    "McpManager",
    "McpServerConnection",
    "McpSyncResult",
    "McpTransport",
    "call_result_text",
    "function_names",
    "tool_info",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class McpSyncResult:
    """The outcome of ``McpManager.sync`` for one configured server.

    ``tools`` (the allowed tools) when connected, else ``error``. ``changed`` is False
    when the server, its configuration and so its tools are as after the previous sync (a
    session may then skip announcing them again).
    """

    server_label: str
    tools: list[McpToolInfo] | None
    error: McpError | None
    changed: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_item(self, item_id: str | None = None) -> McpListToolsItem:
        """The ``mcp_list_tools`` item announcing these tools (empty on failure)."""
        return McpListToolsItem(id=item_id, server_label=self.server_label, tools=list(self.tools or []))


def _endpoint(config: McpTool) -> tuple[object, ...]:
    """What a connection depends on; other fields (filters, approval) apply without reconnecting."""
    headers = tuple(sorted((config.headers or {}).items()))
    return (config.server_url, config.connector_id, config.tunnel_id, config.authorization, headers)


class McpManager:
    """The MCP servers of one session, keyed by ``server_label``."""

    def __init__(
        self, *, egress: EgressPolicy, open_timeout: float = 10.0, close_timeout: float = 5.0
    ) -> None:
        self.egress = egress
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self._configs: dict[str, McpTool] = {}
        self._connections: dict[str, McpServerConnection] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._by_name: dict[str, tuple[str, str]] = {}
        self._sync_lock = asyncio.Lock()
        self._reconnecting: dict[str, asyncio.Lock] = {}
        self._closed = False

    # --- configuration --------------------------------------------------------------

    async def sync(self, tools: Sequence[object], *, timeout: float | None = None) -> list[McpSyncResult]:
        """Match the connections to the session's ``mcp`` tools (other tools are ignored).

        New servers are connected and listed (concurrently, each within ``timeout``),
        removed ones closed, changed ones reconnected; servers that failed before are
        retried. One result per configured server, in configuration order; a repeated
        ``server_label`` gets an error result and is otherwise ignored.
        """
        timeout = self.open_timeout if timeout is None else timeout
        async with self._sync_lock:
            if self._closed:
                raise RuntimeError("McpManager is closed")
            ordered = [tool for tool in tools if isinstance(tool, McpTool)]
            wanted: dict[str, McpTool] = {}
            for tool in ordered:
                wanted.setdefault(tool.server_label, tool)

            stale = [label for label in self._connections if label not in wanted]
            results: dict[str, McpSyncResult] = {}
            to_open: list[McpTool] = []
            for label, config in wanted.items():
                conn = self._connections.get(label)
                previous = self._configs.get(label)
                if conn is not None and conn.alive and _endpoint(conn.config) == _endpoint(config):
                    conn.reconfigure(config)
                    results[label] = McpSyncResult(label, conn.tools, None, changed=previous != config)
                    continue
                if conn is not None:
                    stale.append(label)
                to_open.append(config)
            await self._close_labels(stale)
            self._configs = dict(wanted)

            opened = await asyncio.gather(*(self._open_and_list(config, timeout) for config in to_open))
            for config, (conn, result) in zip(to_open, opened, strict=True):
                if conn is not None:
                    self._connections[config.server_label] = conn
                results[config.server_label] = result
            self._rebuild_names()

            out: list[McpSyncResult] = []
            for tool in ordered:
                if wanted[tool.server_label] is tool:
                    out.append(results[tool.server_label])
                    continue
                error = McpError(
                    "protocol_error",
                    JSONRPC_INVALID_PARAMS,
                    f"server_label {tool.server_label!r} is used by more than one mcp tool",
                )
                out.append(McpSyncResult(tool.server_label, None, error))
            return out

    async def _open_and_list(
        self, config: McpTool, timeout: float
    ) -> tuple[McpServerConnection | None, McpSyncResult]:
        label = config.server_label
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        conn: McpServerConnection | None = None
        try:
            conn = await McpServerConnection.open(config, timeout=timeout, egress=self.egress)
            tools = await conn.list_tools(timeout=max(0.0, deadline - loop.time()))
        except Exception as exc:
            if isinstance(exc, McpError):
                error = exc
                log.warning("MCP server %r unavailable: %s", label, error.message)
            else:  # a bug, not the server's doing: still only this server's result fails
                log.exception("MCP server %r: unexpected failure", label)
                error = McpError(
                    "protocol_error",
                    None,
                    f"MCP server {label!r}: {type(exc).__name__}: {redact_urls(str(exc))}",
                )
            if conn is not None:
                await conn.aclose(timeout=self.close_timeout)
            return None, McpSyncResult(label, None, error)
        except BaseException:
            if conn is not None:
                await conn.aclose(timeout=self.close_timeout)
            raise
        return conn, McpSyncResult(label, tools, None)

    async def _close_labels(self, labels: Sequence[str]) -> None:
        conns = [
            self._connections.pop(label) for label in dict.fromkeys(labels) if label in self._connections
        ]
        if conns:
            await asyncio.gather(*(conn.aclose(timeout=self.close_timeout) for conn in conns))

    def _rebuild_names(self) -> None:
        pairs = [(label, tool.name) for label, tool in self.tools_for_llm()]
        self._names = function_names(pairs)
        self._by_name = {name: pair for pair, name in self._names.items()}

    # --- what the model sees --------------------------------------------------------

    @property
    def server_labels(self) -> list[str]:
        """The configured servers, connected or not, in configuration order."""
        return list(self._configs)

    def connection(self, server_label: str) -> McpServerConnection | None:
        return self._connections.get(server_label)

    def tools_for_llm(self) -> list[tuple[str, McpToolInfo]]:
        """(server_label, tool) for every allowed tool of every connected server."""
        return [
            (label, tool)
            for label in self._configs
            if (conn := self._connections.get(label)) is not None
            for tool in conn.tools
        ]

    def function_name(self, server_label: str, tool_name: str) -> str | None:
        """The function name the model sees for this tool (None if not offered)."""
        return self._names.get((server_label, tool_name))

    def resolve(self, llm_tool_name: str) -> tuple[str, str] | None:
        """(server_label, tool_name) behind a function name the model called, or None."""
        return self._by_name.get(llm_tool_name)

    def function_tools(self) -> list[FunctionTool]:
        """The MCP tools as function tools for the model, named as ``function_name`` says."""
        out: list[FunctionTool] = []
        for label, tool in self.tools_for_llm():
            config = self._configs[label]
            description = tool.description or f"Tool {tool.name} of the MCP server {label}."
            if config.server_description:
                description = f"{description}\n(MCP server {label}: {config.server_description})"
            out.append(
                FunctionTool(
                    name=self._names[(label, tool.name)],
                    description=description,
                    parameters=tool.input_schema,
                )
            )
        return out

    def needs_approval(self, server_label: str, name: str) -> bool:
        """Whether ``require_approval`` asks the client to approve this call (unknown server: True)."""
        conn = self._connections.get(server_label)
        if conn is not None:
            return conn.needs_approval(name)
        config = self._configs.get(server_label)
        if config is None:
            return True
        return mcp_filters.needs_approval(config.require_approval, name, None)

    # --- calls ----------------------------------------------------------------------

    async def call(
        self,
        server_label: str,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        timeout: float,
    ) -> str:
        """Call a tool and return its output text, or raise ``McpError``, within ``timeout``.

        A server whose connection was lost (or never made) is reconnected first, within
        the same timeout; a call that fails midway is never retried.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        conn = await self._live_connection(server_label, timeout)
        return await conn.call_tool(name, arguments, timeout=max(0.0, deadline - loop.time()))

    async def _live_connection(self, label: str, timeout: float) -> McpServerConnection:
        config = self._configs.get(label)
        if config is None or self._closed:
            raise McpError(
                "protocol_error", JSONRPC_INVALID_PARAMS, f"No MCP server with server_label {label!r}"
            )
        conn = self._connections.get(label)
        if conn is not None and conn.alive:
            return conn
        lock = self._reconnecting.setdefault(label, asyncio.Lock())
        try:
            async with asyncio.timeout(timeout):
                await lock.acquire()
        except TimeoutError:
            raise McpError(
                "http_error",
                None,
                f"MCP server {label!r}: reconnecting took longer than {timeout:.3g} s",
                timed_out=True,
            ) from None
        try:
            conn = self._connections.get(label)
            if conn is not None and conn.alive:
                return conn
            log.info("MCP server %r: reconnecting", label)
            fresh = await McpServerConnection.open(config, timeout=timeout, egress=self.egress)
            if self._configs.get(label) != config or self._closed:
                await fresh.aclose(timeout=self.close_timeout)
                raise McpError("protocol_error", JSONRPC_INVALID_PARAMS, f"MCP server {label!r} was removed")
            old = self._connections.get(label)
            if old is not None:
                fresh.adopt_listing(old)
                await old.aclose(timeout=self.close_timeout)
            self._connections[label] = fresh
            return fresh
        finally:
            lock.release()

    async def aclose(self) -> None:
        """Close every connection (bounded by ``close_timeout``)."""
        self._closed = True
        await self._close_labels(list(self._connections))
        self._names, self._by_name = {}, {}
        await wait_abandoned(self.close_timeout)
