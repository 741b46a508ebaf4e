"""One remote MCP server for one session, over the official ``mcp`` SDK.

Lifetimes. The SDK's transports and ``Client`` are anyio context managers holding task
groups, whose cancel scopes must be exited by the task that entered them. So each
connection has an *owner task*: it enters the httpx2 client, the transport and the MCP
``Client`` (handshake included) on one ``AsyncExitStack``, reports that the connection is
open, waits for ``aclose()`` and exits the stack itself. Callers in any task then send
requests through the ``ClientSession`` (its streams work across tasks); each request runs
as its own task that the caller waits for at most ``timeout``, so neither a silent server
nor the SDK's own cleanup can hold the caller longer. When the transport breaks (server
killed, connection refused on a later request), the SDK tears its task group down: that
lands in the owner task, never in a caller, and the connection is marked dead.

Transports. Streamable HTTP first; when the server answers the first POST with 400, 404 or
405 (an HTTP+SSE-only server) the owner falls back to the SSE transport on the same URL. A
URL whose path ends in ``/sse`` goes to SSE directly. ``authorization`` is sent as
``Authorization: Bearer <token>`` with the configured ``headers`` on every request.

Egress. Every request goes through an ``EgressTransport`` of the session's ``EgressPolicy``:
the URL is checked before anything is sent, every TCP connection (redirect hops included) by
its resolved addresses; a refusal fails the connection with a ``refused`` ``McpError`` naming
the rule. Headers that define the connection or its framing (``Host``, ``Cookie``,
``Connection``, ``Content-Length``, ``Transfer-Encoding``, ``Upgrade``, ``TE``, ``Trailer``,
``Keep-Alive``, ``Proxy-*``) are refused in a tool's ``headers`` rather than dropped, so a
client learns its configuration is not what is sent. URLs are logged and reported without
userinfo, query or fragment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CONNECTION_CLOSED,
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    Implementation,
    ResourceLink,
    TextContent,
    TextResourceContents,
    Tool,
)

from palaver import __version__
from palaver.egress import EgressPolicy, EgressRefused, EgressTransport
from palaver.protocol.items import McpToolInfo
from palaver.protocol.tools import McpTool
from palaver.redact import install_filter, redact_urls, safe_url

from . import mcp_filters
from .mcp_errors import (
    JSONRPC_INVALID_PARAMS,
    McpError,
    leaf_exception,
    refused_by_egress,
    translate_exception,
)

__all__ = ["McpServerConnection", "McpTransport", "call_result_text", "tool_info", "wait_abandoned"]

log = logging.getLogger(__name__)

McpTransport = Literal["streamable_http", "sse"]
T = TypeVar("T")

#: Statuses of the first streamable-HTTP POST that mean "this server only speaks HTTP+SSE".
FALLBACK_STATUSES = frozenset({400, 404, 405})
#: Longest silence tolerated inside one HTTP response (a tool call streaming its result);
#: every operation is bounded by its own timeout anyway.
HTTP_READ_TIMEOUT = 300.0
#: ``tools/list`` pages followed at most (a server whose cursors never end cannot loop us).
MAX_TOOL_PAGES = 100
#: How long a failed request waits for the owner task to report why the connection died.
DEATH_REPORT_GRACE = 1.0

#: Headers a tool's ``headers`` may not set: they define the connection, its framing or its
#: target (``Proxy-*`` too), or carry ambient credentials (cookies) OpenAI does not forward.
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "cookie",
        "cookie2",
        "connection",
        "content-length",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
    }
)
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

# httpx2 logs every request's URL at info level, query string included; the SDK's transports
# log redirect targets. Show those URLs without userinfo, query or fragment.
install_filter("httpx2", "mcp.client.streamable_http", "mcp.client.sse")

_ABANDONED: set[asyncio.Task[Any]] = set()


def _abandon(task: asyncio.Task[Any]) -> None:
    """Let ``task`` finish in the background, referenced until it does, exceptions retrieved."""
    task.cancel()
    if not task.done():
        _ABANDONED.add(task)
        task.add_done_callback(_ABANDONED.discard)
    task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def wait_abandoned(timeout: float = 5.0) -> bool:
    """Wait up to ``timeout`` for tasks given up by timed-out opens and closes; True if none remain."""
    pending = {task for task in _ABANDONED if not task.done()}
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    return not any(not task.done() for task in _ABANDONED)


def _request_headers(config: McpTool) -> dict[str, str]:
    """What is sent on every request: the tool's ``headers`` and its ``authorization``.

    A header Palaver never forwards, or a malformed one, is a ``refused`` ``McpError``.
    """
    headers = dict(config.headers or {})
    for name, value in headers.items():
        lowered = name.lower()
        why = None
        if not name or not set(name) <= _TOKEN:
            why = "is not a valid header name"
        elif lowered in FORBIDDEN_HEADERS or lowered.startswith("proxy-"):
            why = "is not forwarded (it defines the connection, not the request)"
        elif any(ch in str(value) for ch in "\r\n\0"):
            why = "has a line break or NUL in its value"
        if why is not None:
            raise McpError(
                "protocol_error",
                JSONRPC_INVALID_PARAMS,
                f"MCP server {config.server_label!r}: header {name[:64]!r} {why}; "
                "an mcp tool may set authorization and end-to-end headers only",
                refused=True,
            )
    if config.authorization:
        token = config.authorization.strip()
        has_scheme = token.lower().startswith("bearer ")
        headers = {name: value for name, value in headers.items() if name.lower() != "authorization"}
        headers["Authorization"] = token if has_scheme else f"Bearer {token}"
    return headers


def _is_sse_url(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith("/sse")


def tool_info(tool: Tool) -> McpToolInfo:
    """An MCP ``Tool`` as listed in an ``mcp_list_tools`` item (annotations in MCP's camelCase)."""
    annotations = None
    if tool.annotations is not None:
        annotations = tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True) or None
    return McpToolInfo(
        name=tool.name,
        input_schema=dict(tool.input_schema),
        description=tool.description,
        annotations=annotations,
    )


def _base64_size(data: str) -> int:
    return max(0, len(data) * 3 // 4 - data.count("=", -2))


def _describe_block(block: object) -> tuple[str, bool]:
    """Text for one content block, and whether it is the block's own text."""
    if isinstance(block, TextContent):
        return block.text, True
    if isinstance(block, ImageContent | AudioContent):
        return f"[{block.type}: {block.mime_type}, {_base64_size(block.data)} bytes]", False
    if isinstance(block, ResourceLink):
        return f"[resource link: {block.name} <{block.uri}>]", False
    if isinstance(block, EmbeddedResource):
        resource = block.resource
        if isinstance(resource, TextResourceContents):
            return resource.text, True
        if isinstance(resource, BlobResourceContents):
            mime = resource.mime_type or "application/octet-stream"
            return f"[resource: {resource.uri}, {mime}, {_base64_size(resource.blob)} bytes]", False
    return f"[{getattr(block, 'type', type(block).__name__)} content]", False


def call_result_text(result: CallToolResult) -> str:
    """A tool result as the text the model reads.

    Text parts (and embedded text resources) are joined by newlines, other parts described
    in brackets where they stand; with no text part, structured content is given as JSON.
    """
    described = [_describe_block(block) for block in result.content]
    parts = [text for text, _ in described]
    if not any(is_text for _, is_text in described) and result.structured_content is not None:
        parts.insert(0, json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def _arguments(arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise McpError(
                "protocol_error", JSONRPC_INVALID_PARAMS, f"arguments are not valid JSON: {exc}"
            ) from None
        if not isinstance(parsed, dict):
            raise McpError("protocol_error", JSONRPC_INVALID_PARAMS, "arguments must be a JSON object")
        return parsed
    return dict(arguments)


class McpServerConnection:
    """A live connection to one MCP server; make one with ``await McpServerConnection.open(...)``."""

    def __init__(self, config: McpTool, *, timeout: float, egress: EgressPolicy) -> None:
        if config.server_url is None:
            raise McpError(
                "protocol_error",
                JSONRPC_INVALID_PARAMS,
                f"MCP server {config.server_label!r}: only server_url is supported "
                "(connector_id and tunnel_id are not available on this server)",
            )
        if urlsplit(config.server_url).scheme not in ("http", "https"):
            raise McpError(
                "protocol_error",
                JSONRPC_INVALID_PARAMS,
                f"MCP server {config.server_label!r}: server_url must be an http(s) URL",
                refused=True,
            )
        try:
            egress.check_url(config.server_url)
        except EgressRefused as exc:
            raise refused_by_egress(exc, server_label=config.server_label) from None
        self._egress = egress
        self._refused: EgressRefused | None = None
        self._config = config
        self._url = config.server_url
        self._timeout = timeout
        self._headers = _request_headers(config)
        self._transport: McpTransport | None = None
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._dead = asyncio.Event()
        self._failure: BaseException | None = None
        self._broken: McpError | None = None
        self._closed = False
        self._requests: set[asyncio.Task[Any]] = set()
        self._status_seq = 0
        self._error_statuses: deque[tuple[int, int]] = deque(maxlen=32)
        self._listing: dict[str, McpToolInfo] | None = None
        self._tools: list[McpToolInfo] = []

    # --- opening and closing --------------------------------------------------------

    @classmethod
    async def open(cls, config: McpTool, *, timeout: float, egress: EgressPolicy) -> McpServerConnection:
        """Connect and initialize within ``timeout`` seconds, or raise ``McpError``.

        Every connection is checked by ``egress``; a refused one is never made.
        """
        conn = cls(config, timeout=timeout, egress=egress)
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        conn._owner = asyncio.create_task(conn._own(opened), name=f"mcp-owner:{config.server_label}")
        try:
            done, _ = await asyncio.wait({opened}, timeout=timeout)
        except asyncio.CancelledError:
            opened.cancel()
            conn._give_up()
            raise
        if not done:
            opened.cancel()
            conn._give_up()
            raise McpError(
                "http_error",
                None,
                f"MCP server {conn.server_label!r} did not complete the handshake within {timeout:.3g} s",
                timed_out=True,
            )
        error = opened.exception()
        if error is not None:
            conn._give_up()
            raise error
        log.info(
            "MCP server %r connected over %s to %s", conn.server_label, conn.transport, safe_url(conn._url)
        )
        return conn

    async def _own(self, opened: asyncio.Future[None]) -> None:
        """The owner task: enters and exits every context manager of the connection."""
        try:
            async with AsyncExitStack() as stack:
                self._client = await self._connect(stack)
                if not opened.done():
                    opened.set_result(None)
                await self._stop.wait()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the owner never lets a transport failure escape
            self._failure = exc
            if not opened.done():
                opened.set_exception(self._translate(exc, "the MCP handshake", since=0))
            elif not self._stop.is_set():
                log.warning(
                    "MCP server %r: connection lost: %s",
                    self.server_label,
                    redact_urls(repr(leaf_exception(exc))),
                )
        finally:
            self._client = None
            self._dead.set()

    async def _connect(self, stack: AsyncExitStack) -> Client:
        if _is_sse_url(self._url):
            return await self._enter(stack, "sse")
        mark = self._status_seq
        try:
            return await self._enter(stack, "streamable_http")
        except Exception as exc:
            statuses = self._statuses_since(mark)
            if not statuses or statuses[-1] not in FALLBACK_STATUSES:
                raise
            first = self._translate(exc, "the MCP handshake", since=mark)
        log.info(
            "MCP server %r answered streamable HTTP with %s; trying HTTP+SSE", self.server_label, first.code
        )
        mark = self._status_seq
        try:
            return await self._enter(stack, "sse")
        except Exception as exc:
            second = self._translate(exc, "the MCP handshake over HTTP+SSE", since=mark)
            raise (second if second.code in (401, 403) else first) from exc

    async def _enter(self, stack: AsyncExitStack, transport: McpTransport) -> Client:
        async with AsyncExitStack() as attempt:
            if transport == "streamable_http":
                http = await attempt.enter_async_context(self._http_client())
                streams = streamable_http_client(self._url, http_client=http)
            else:
                streams = sse_client(
                    self._url,
                    headers=self._headers,
                    timeout=self._timeout,
                    sse_read_timeout=HTTP_READ_TIMEOUT,
                    httpx_client_factory=self._http_client,
                )
            client = Client(
                streams,
                cache=None,
                client_info=Implementation(name="palaver", version=__version__),
            )
            await attempt.enter_async_context(client)
            self._transport = transport
            stack.push_async_exit(attempt.pop_all())
            return client
        raise AssertionError("unreachable")  # pragma: no cover

    def _http_client(
        self,
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            headers=self._headers if headers is None else headers,
            timeout=timeout or httpx2.Timeout(self._timeout, read=HTTP_READ_TIMEOUT),
            auth=auth,
            event_hooks={"response": [self._record_status]},
            transport=EgressTransport(self._egress, on_refused=self._record_refusal),
            trust_env=False,
        )

    def _record_refusal(self, refusal: EgressRefused) -> None:
        # The SDK may fold the exception into a generic error: keep the reason for _translate.
        if self._refused is None:
            self._refused = refusal

    async def _record_status(self, response: httpx2.Response) -> None:
        self._status_seq += 1
        if response.status_code >= 400:
            self._error_statuses.append((self._status_seq, response.status_code))

    def _statuses_since(self, mark: int) -> list[int]:
        return [status for seq, status in self._error_statuses if seq > mark]

    def _translate(self, exc: BaseException, what: str, *, since: int) -> McpError:
        if self._refused is not None:
            return refused_by_egress(self._refused, server_label=self.server_label)
        return translate_exception(
            exc,
            server_label=self.server_label,
            what=what,
            http_statuses=self._statuses_since(since),
            cause=self._failure,
        )

    def _give_up(self) -> None:
        self._closed = True
        self._stop.set()
        for task in (*self._requests, self._owner):
            if task is not None:
                _abandon(task)

    async def aclose(self, *, timeout: float = 5.0) -> None:
        """Close the connection (the owner task exits its contexts); waits at most about ``timeout``."""
        self._closed = True
        self._stop.set()
        for task in self._requests:
            task.cancel()
        tasks = {task for task in (*self._requests, self._owner) if task is not None and not task.done()}
        if not tasks:
            return
        try:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                for task in pending:
                    task.cancel()
                _, pending = await asyncio.wait(pending, timeout=1.0)
            if pending:
                log.warning("MCP server %r: connection still closing after %g s", self.server_label, timeout)
        except asyncio.CancelledError:
            self._give_up()
            raise
        for task in pending:
            _abandon(task)

    # --- state ----------------------------------------------------------------------

    @property
    def server_label(self) -> str:
        return self._config.server_label

    @property
    def config(self) -> McpTool:
        return self._config

    @property
    def transport(self) -> McpTransport | None:
        """The transport in use: ``"streamable_http"`` or ``"sse"``."""
        return self._transport

    @property
    def alive(self) -> bool:
        """False once closed, or once the connection to the server was lost."""
        return (
            not self._closed and self._broken is None and self._client is not None and not self._dead.is_set()
        )

    @property
    def tools(self) -> list[McpToolInfo]:
        """The allowed tools of the last listing (empty before ``list_tools()``)."""
        return list(self._tools)

    def reconfigure(self, config: McpTool) -> None:
        """Apply a new ``allowed_tools`` / ``require_approval`` (same server) to the cached listing."""
        self._config = config
        if self._listing is not None:
            self._tools = mcp_filters.filter_tools(config.allowed_tools, self._listing.values())

    def adopt_listing(self, other: McpServerConnection) -> None:
        """Take over the tool listing of ``other`` (a reconnect keeps what the model was shown)."""
        if other._listing is not None:
            self._listing = dict(other._listing)
            self._tools = mcp_filters.filter_tools(self._config.allowed_tools, self._listing.values())

    def is_allowed(self, name: str) -> bool:
        listed = self._listing.get(name) if self._listing is not None else None
        return mcp_filters.is_tool_allowed(self._config.allowed_tools, name, listed)

    def needs_approval(self, name: str) -> bool:
        """Whether ``require_approval`` asks the client to approve a call of ``name``."""
        listed = self._listing.get(name) if self._listing is not None else None
        return mcp_filters.needs_approval(self._config.require_approval, name, listed)

    # --- requests -------------------------------------------------------------------

    async def list_tools(self, *, timeout: float | None = None) -> list[McpToolInfo]:
        """Every page of ``tools/list``, filtered by ``allowed_tools``."""

        async def walk(client: Client) -> list[Tool]:
            tools: list[Tool] = []
            cursor: str | None = None
            seen: set[str] = set()
            for _ in range(MAX_TOOL_PAGES):
                page = await client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor or cursor in seen:
                    break
                seen.add(cursor)
            return tools

        listing = [tool_info(tool) for tool in await self._request("tools/list", walk, timeout)]
        self._listing = {tool.name: tool for tool in listing}
        self._tools = mcp_filters.filter_tools(self._config.allowed_tools, listing)
        return list(self._tools)

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | str | None, *, timeout: float) -> str:
        """Call the tool and return its output as text.

        ``arguments`` is a mapping or its JSON text. Raises ``McpError``: ``protocol_error``
        for a tool outside ``allowed_tools`` (the server is not contacted) or a JSON-RPC
        error, ``tool_execution_error`` when the result has ``isError``, ``http_error`` for
        HTTP and transport failures and timeouts.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        args = _arguments(arguments)
        allowed = self._config.allowed_tools
        needs_listing = allowed is not None and not isinstance(allowed, list) and bool(allowed.read_only)
        if needs_listing and self._listing is None:
            await self.list_tools(timeout=max(0.0, deadline - loop.time()))
        if not self.is_allowed(name):
            raise McpError(
                "protocol_error",
                JSONRPC_INVALID_PARAMS,
                f"Tool {name!r} is not allowed on MCP server {self.server_label!r} (allowed_tools)",
            )

        async def call(client: Client) -> CallToolResult:
            return await client.call_tool(name, args)

        result = await self._request(f"tools/call {name!r}", call, max(0.0, deadline - loop.time()))
        text = call_result_text(result)
        if result.is_error:
            raise McpError("tool_execution_error", None, text or f"Tool {name!r} failed")
        return text

    def _live_client(self, what: str) -> Client:
        if self._broken is not None:
            raise McpError(self._broken.kind, self._broken.code, self._broken.message)
        client = self._client
        if self._closed or client is None or self._dead.is_set():
            state = "closed" if self._closed else "lost"
            reason = (
                f" ({redact_urls(repr(leaf_exception(self._failure)))})" if self._failure is not None else ""
            )
            raise McpError(
                "http_error", None, f"MCP server {self.server_label!r}: connection {state}{reason}"
            )
        return client

    async def _request(
        self, what: str, operation: Callable[[Client], Coroutine[Any, Any, T]], timeout: float | None
    ) -> T:
        timeout = self._timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        client = self._live_client(what)
        mark = self._status_seq
        task: asyncio.Task[T] = asyncio.create_task(operation(client), name=f"mcp:{self.server_label}:{what}")
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            _abandon(task)
            raise
        if not done:
            _abandon(task)
            raise McpError(
                "http_error",
                None,
                f"MCP server {self.server_label!r} did not answer {what} within {timeout:.3g} s",
                timed_out=True,
            )
        if task.cancelled():
            raise McpError(
                "http_error", None, f"MCP server {self.server_label!r}: connection closed during {what}"
            )
        exc = task.exception()
        if exc is None:
            return task.result()
        leaf = leaf_exception(exc)
        session_gone = isinstance(leaf, MCPError) and leaf.code == CONNECTION_CLOSED
        if session_gone:
            self._stop.set()  # nothing more can go through this session: let the owner wind down
        if (session_gone or not isinstance(leaf, MCPError)) and not self._dead.is_set():
            # The SDK wakes waiters as its transport dies: give the owner a moment to say why.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(DEATH_REPORT_GRACE, deadline - loop.time()))):
                    await self._dead.wait()
        error = self._translate(exc, what, since=mark)
        if self._dead.is_set() or session_gone:
            self._broken = error  # the SDK's session is gone for good: later requests fail at once
        raise error from exc
