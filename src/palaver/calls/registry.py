"""The calls this server knows, by ``rtc_…`` id.

A call is registered when it arrives and forgotten a short grace after it is over, so a late
REST command gets a precise 409 ("has ended") rather than a bare 404, without ended calls piling
up in memory.
"""

from __future__ import annotations

import asyncio
import logging

from palaver.calls.call import Call

log = logging.getLogger(__name__)

#: Seconds an ended call is still known (for late REST commands) before it is forgotten.
ENDED_GRACE_SECONDS = 30.0


class CallRegistry:
    def __init__(self, ended_grace: float = ENDED_GRACE_SECONDS) -> None:
        self._calls: dict[str, Call] = {}
        self._grace = ended_grace
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def register(self, call: Call) -> None:
        if call.id in self._calls:
            raise ValueError(f"call {call.id} is already registered")
        self._calls[call.id] = call
        call.on_end(self._schedule_forget)

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def remove(self, call_id: str) -> Call | None:
        timer = self._timers.pop(call_id, None)
        if timer is not None:
            timer.cancel()
        return self._calls.pop(call_id, None)

    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def close(self) -> None:
        """Cancel the forget timers (shutdown); the calls themselves are the transport's to end."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _schedule_forget(self, call: Call) -> None:
        if call.id not in self._calls or call.id in self._timers:
            return
        if self._grace <= 0:
            self.remove(call.id)
            return
        loop = asyncio.get_running_loop()
        self._timers[call.id] = loop.call_later(self._grace, self._forget, call.id)

    def _forget(self, call_id: str) -> None:
        self._timers.pop(call_id, None)
        call = self._calls.pop(call_id, None)
        if call is not None:
            log.debug("call %s forgotten", call_id)
