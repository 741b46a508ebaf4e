"""The one exception of the MCP client, and how foreign failures are translated into it.

Every failure of a remote MCP server reaches the session as an ``McpError`` whose ``kind``
is one of the three error types of an ``mcp_call`` item (``protocol_error``,
``tool_execution_error``, ``http_error``); ``to_item_error()`` gives that item's ``error``.
Exceptions of the ``mcp`` SDK, httpx2 and anyio (and the egress policy's ``EgressRefused``)
are translated here, at the boundary, and never escape to callers. Messages never carry a
URL's userinfo, query or fragment (``redact_urls``): a ``server_url`` may hold an API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Literal

import anyio
import httpx2
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, INTERNAL_ERROR

from palaver.egress import EgressRefused
from palaver.errors import ToolError
from palaver.protocol.items import McpCallError, McpHttpError, McpProtocolError, McpToolExecutionError
from palaver.redact import redact_urls

__all__ = [
    "HTTP_NO_RESPONSE",
    "HTTP_TIMEOUT",
    "JSONRPC_INTERNAL_ERROR",
    "JSONRPC_INVALID_PARAMS",
    "McpError",
    "McpErrorKind",
    "refused_by_egress",
    "translate_exception",
]

McpErrorKind = Literal["protocol_error", "tool_execution_error", "http_error"]

#: JSON-RPC codes used for errors raised locally (the request never reached the server).
JSONRPC_INVALID_PARAMS = -32602
JSONRPC_INTERNAL_ERROR = INTERNAL_ERROR

#: ``code`` of an ``http_error`` item when no HTTP status was received: the server could
#: not be reached or the connection broke (502 Bad Gateway), or it did not answer in time
#: (504 Gateway Timeout). ``McpError.code`` itself stays ``None`` in those cases.
HTTP_NO_RESPONSE = 502
HTTP_TIMEOUT = 504


class McpError(ToolError):
    """A failed MCP operation: ``kind`` names the ``mcp_call`` error type.

    ``code`` is the HTTP status (``http_error``) or the JSON-RPC error code
    (``protocol_error``) when known, else ``None``; ``timed_out`` marks an operation that
    was abandoned because the server did not answer within its timeout. ``refused`` marks a
    tool configuration Palaver refused before connecting (the egress policy, a forbidden
    header): the client should hear why in an ``error`` event, not only a failed listing.
    """

    def __init__(
        self,
        kind: McpErrorKind,
        code: int | None = None,
        message: str = "",
        *,
        timed_out: bool = False,
        refused: bool = False,
    ) -> None:
        self.kind: McpErrorKind = kind
        self.code = code
        self.message = message or kind.replace("_", " ")
        self.timed_out = timed_out
        self.refused = refused
        super().__init__(self.message)

    def to_item_error(self) -> McpCallError:
        """The ``error`` of an ``mcp_call`` item for this failure."""
        if self.kind == "tool_execution_error":
            return McpToolExecutionError(message=self.message)
        if self.kind == "protocol_error":
            code = self.code if self.code is not None else JSONRPC_INTERNAL_ERROR
            return McpProtocolError(code=code, message=self.message)
        fallback = HTTP_TIMEOUT if self.timed_out else HTTP_NO_RESPONSE
        code = self.code if self.code is not None else fallback
        return McpHttpError(code=code, message=self.message)

    def __repr__(self) -> str:
        return f"McpError({self.kind!r}, {self.code!r}, {self.message!r})"


def leaf_exception(exc: BaseException) -> BaseException:
    """The first real failure inside (nested) exception groups, preferring non-cancellations."""
    while isinstance(exc, BaseExceptionGroup):
        inner = list(exc.exceptions)
        real = [e for e in inner if not isinstance(e, anyio.get_cancelled_exc_class())]
        exc = (real or inner)[0]
    return exc


def refused_by_egress(exc: EgressRefused, *, server_label: str) -> McpError:
    """The error for a ``server_url`` (or a redirect of it) the egress policy refused."""
    return McpError(
        "protocol_error",
        JSONRPC_INVALID_PARAMS,
        f"MCP server {server_label!r}: server_url refused by the egress policy: {exc}",
        refused=True,
    )


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _describe(exc: BaseException) -> str:
    text = redact_urls(str(exc).strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def translate_exception(
    exc: BaseException,
    *,
    server_label: str,
    what: str,
    http_statuses: Sequence[int] = (),
    cause: BaseException | None = None,
) -> McpError:
    """Translate a failure of the SDK/transport during ``what`` into an ``McpError``.

    ``http_statuses`` are the error statuses (>= 400) the server answered with while the
    operation ran: the SDK folds them into generic JSON-RPC errors, so the last one is what
    makes the failure an ``http_error``. ``cause`` is why the connection died, when known.
    """
    exc = leaf_exception(exc)
    if isinstance(exc, McpError):
        return exc
    if isinstance(exc, EgressRefused):
        return refused_by_egress(exc, server_label=server_label)
    where = f"MCP server {server_label!r}"
    status = http_statuses[-1] if http_statuses else None
    if status is None and isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
    if status is not None:
        return McpError("http_error", status, f"{where} answered {what} with HTTP {_status_text(status)}")
    if isinstance(exc, MCPError):
        if exc.code == CONNECTION_CLOSED:
            reason = f" ({_describe(leaf_exception(cause))})" if cause is not None else ""
            return McpError("http_error", None, f"{where}: connection lost during {what}{reason}")
        return McpError("protocol_error", exc.code, f"{where} rejected {what}: {redact_urls(exc.message)}")
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return McpError("http_error", None, f"{where} did not answer {what} in time", timed_out=True)
    if isinstance(
        exc,
        httpx2.HTTPError
        | httpx2.StreamError
        | OSError
        | anyio.BrokenResourceError
        | anyio.ClosedResourceError
        | anyio.EndOfStream,
    ):
        return McpError("http_error", None, f"{where}: {what} failed: {_describe(exc)}")
    return McpError("protocol_error", JSONRPC_INTERNAL_ERROR, f"{where}: {what} failed: {_describe(exc)}")
