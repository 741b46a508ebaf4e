"""One call's server events, fanned out to every sideband WebSocket watching it.

A phone call's session has no client socket of its own: its ``emit`` is the call's
``EventFanout``. Each event is serialised once (when made, as the session requires: items are
mutable) and handed to every attached sink; with nobody attached it is dropped without even
being serialised. A slow sink is the sink's own business (the WebSocket outbox bounds its queue
and disconnects that one client), so one sideband never holds up the call or another sideband.
"""

from __future__ import annotations

from typing import Protocol

from palaver.protocol.server_events import ServerEvent
from palaver.transports.wire_log import WireLog


class EventSink(Protocol):
    """Where a sideband's events go: its socket writer."""

    def put(self, text: str) -> None:
        """Queue one serialised event; must not block."""

    def finish(self) -> None:
        """No more events: close normally once everything queued is written."""


class EventFanout:
    def __init__(self, wire_log: WireLog | None = None) -> None:
        self._sinks: list[EventSink] = []
        self._wire_log = wire_log
        self._closed = False

    def __call__(self, event: ServerEvent) -> None:
        """The session's ``emit``."""
        if not self._sinks:
            return
        text = event.to_json()
        if self._wire_log is not None:  # once per event, however many sidebands read it
            self._wire_log.write(text)
        for sink in tuple(self._sinks):
            sink.put(text)

    emit = __call__

    @property
    def listeners(self) -> int:
        return len(self._sinks)

    @property
    def closed(self) -> bool:
        return self._closed

    def attach(self, sink: EventSink) -> bool:
        """Start sending this call's events to ``sink``; False (not attached) once the call is over."""
        if self._closed:
            return False
        self._sinks.append(sink)
        return True

    def detach(self, sink: EventSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def close(self) -> None:
        """The call is over: every sink finishes after what it already has; later events are dropped."""
        self._closed = True
        sinks, self._sinks = self._sinks, []
        for sink in sinks:
            sink.finish()
