"""Following a phone call from a test: its id, its sideband WebSocket, and what SIPp saw on the wire.

    mark = len(server.stderr_text())
    ...  # start the caller
    call_id = await call_id_from_log(server, "sales", since=mark)          # no webhook: the log says it
    watched = await watch_call(server, call_id, api_key=KEY, on_created=hang_up, timeout=30)
    assert watched.closed_cleanly and watched.events[0].type == "session.created"

    for message in sipp_messages(result):   # -trace_msg, both directions, in order
        message.received, message.first_line, message.header("Record-Route")

Everything is bounded: connecting retries until ``timeout``, reading stops at ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import openai
import websockets.exceptions

from tests.support.server import PalaverServer
from tests.support.sip_peers import SippResult

__all__ = [
    "SippMessage",
    "Watched",
    "call_id_from_log",
    "distinct",
    "rest_client",
    "sideband",
    "sipp_messages",
    "system_notes",
    "watch_call",
]


def rest_client(server: PalaverServer, api_key: str) -> openai.AsyncOpenAI:
    """The stock SDK pointed at ``server`` (REST and WebSocket)."""
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=server.http_url + "/v1",
        websocket_base_url=server.ws_base_url,
        max_retries=0,
    )


async def call_id_from_log(server: PalaverServer, dialled: str, *, since: int, timeout: float = 20.0) -> str:
    """The ``rtc_…`` id of the first call to ``dialled`` the server logged after offset ``since``.

    Without a webhook nobody is told a call's id; an operator reads it in the log, and so does
    the test (``call rtc_… incoming to '<dialled>'``).
    """
    pattern = re.compile(r"call (rtc_\w+) incoming to " + re.escape(repr(dialled)))
    async with asyncio.timeout(timeout):
        while True:
            found = pattern.search(server.stderr_text()[since:])
            if found:
                return found.group(1)
            await asyncio.sleep(0.05)


@dataclass
class Watched:
    """What a sideband saw: its events in order, and how it ended."""

    events: list[Any] = field(default_factory=list)
    #: The server closed the socket normally (code 1000) after the call ended.
    closed_cleanly: bool = False
    error: str | None = None

    def of_type(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]


async def watch_call(
    server: PalaverServer,
    call_id: str,
    *,
    api_key: str,
    timeout: float,
    on_created: Callable[[], Awaitable[None]] | None = None,
) -> Watched:
    """Attach a sideband (``?call_id=``) with the openai SDK once the call is live, and read it
    until the server closes it (or ``timeout``).  ``on_created`` runs once ``session.created``
    arrived, so what it causes (a REST refer or hangup) is seen from its first event."""
    watched = Watched()
    try:
        async with asyncio.timeout(timeout), sideband(server, call_id, api_key=api_key) as conn:
            try:
                async for event in conn:  # ends when the server closes normally
                    watched.events.append(event)
                    if event.type == "session.created" and on_created is not None:
                        await on_created()
                watched.closed_cleanly = True
            except websockets.exceptions.ConnectionClosedError as exc:
                watched.error = repr(exc)
    except TimeoutError:
        watched.error = f"the sideband did not close within {timeout:g} s"
    return watched


@contextlib.asynccontextmanager
async def sideband(server: PalaverServer, call_id: str, *, api_key: str) -> AsyncIterator[Any]:
    """A sideband connection (``?call_id=``, the openai SDK's) to the call, once it is live: the
    server answers 404 until the call is accepted, so connecting is retried (bounded)."""
    async with rest_client(server, api_key) as client, contextlib.AsyncExitStack() as stack:
        for attempt in range(400):
            try:
                connecting = client.realtime.connect(call_id=call_id, max_retries=0)
                conn = await stack.enter_async_context(connecting)
                break
            except websockets.exceptions.InvalidStatus:
                if attempt == 399:
                    raise
                await asyncio.sleep(0.05)
        yield conn


def system_notes(events: list[Any]) -> list[str]:
    """The texts of the system-message items the server added to the conversation (in order)."""
    notes: list[str] = []
    for event in events:
        if event.type != "conversation.item.added":
            continue
        item = event.item
        if getattr(item, "type", None) == "message" and getattr(item, "role", None) == "system":
            notes += [part.text for part in item.content if getattr(part, "text", None)]
    return notes


@dataclass(frozen=True)
class SippMessage:
    """One SIP message in SIPp's ``-trace_msg`` file."""

    received: bool  # True: SIPp received it (from the peer); False: SIPp sent it
    transport: str  # "UDP" or "TCP"
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def method(self) -> str | None:
        """The request method, or None for a response."""
        first = self.first_line
        return None if first.startswith("SIP/2.0") else first.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        first = self.first_line
        return int(first.split()[1]) if first.startswith("SIP/2.0 ") else None

    def header(self, name: str) -> list[str]:
        """Values of header ``name`` (case-insensitive; each line once), before the body."""
        values = []
        head = self.text.replace("\r\n", "\n").split("\n\n", 1)[0]
        for line in head.split("\n")[1:]:
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == name.lower():
                values.append(value.strip())
        return values


_TRACE_ENTRY = re.compile(
    r"^(UDP|TCP|TLS) message (received|sent) (?:\[\d+\] bytes|\(\d+ bytes\)) ?:\s*$",
    re.MULTILINE | re.IGNORECASE,
)


def sipp_messages(result: SippResult) -> list[SippMessage]:
    """Every SIP message SIPp sent or received, in order, from its ``messages`` trace."""
    text = result.trace("messages")
    marks = list(_TRACE_ENTRY.finditer(text))
    messages = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        body = text[mark.end() : end]
        # Each entry ends before SIPp's "----- <date>" separator line of the next one.
        body = re.split(r"\n-{10,}[^\n]*\n?", body)[0].strip("\r\n")
        messages.append(SippMessage(mark.group(2).lower() == "received", mark.group(1).upper(), body))
    return messages


def distinct(messages: list[SippMessage]) -> list[SippMessage]:
    """``messages`` without retransmissions: one per direction, first line and CSeq (UDP resends a
    request until it is answered, and a final response until it is acknowledged)."""
    seen: set[tuple[bool, str, tuple[str, ...]]] = set()
    out = []
    for message in messages:
        key = (message.received, message.first_line, tuple(message.header("CSeq")))
        if key not in seen:
            seen.add(key)
            out.append(message)
    return out
