"""Playout accounting: how much of each assistant audio item the user has actually heard.

The engine produces audio faster than real time. A transport plays it at real time (server
side playout for SIP/WebRTC), or, for WebSocket clients that play it themselves, the server
assumes playback starts when the first chunk is sent and runs at real time. Truncation on
barge-in (``conversation.item.truncate`` / the server's own truncation, ``audio_end_ms`` =
what was heard) and the echo guard (``assistant_speaking``) both need that position.

Model: one playback timeline. A chunk queued at ``now`` plays right after everything queued
before it (items play back to back in queue order) or, when the queue has run dry, from
``now`` (playback paused in the gap). One millisecond of audio takes one millisecond of wall
time. Times are wall-clock milliseconds passed in by the caller and must never go backwards.

Sans-I/O: no clock; the adapter may sleep until :meth:`PlayoutTracker.finished_at`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["PlayoutTracker"]


@dataclass
class _Segment:
    item_id: str
    start: float  # wall ms
    end: float  # wall ms


class PlayoutTracker:
    """Where the user's playback is, per item, on a real-time playback timeline."""

    def __init__(self) -> None:
        # Segments not yet fully played, in time order, back to back (no gaps between them).
        self._pending: deque[_Segment] = deque()
        self._queued: dict[str, float] = {}  # item -> ms queued (after clear: ms kept)
        self._settled: dict[str, float] = {}  # item -> ms of fully played, forgotten segments
        self._end: float | None = None  # when the last queued audio ends / ended
        self._now: float | None = None

    # ------------------------------------------------------------------ inputs

    def queued(self, item_id: str, duration_ms: float, now_ms: float) -> None:
        """A chunk of ``duration_ms`` of ``item_id`` was sent (or handed to the player) at ``now_ms``."""
        if duration_ms < 0:
            raise ValueError("duration_ms must be >= 0")
        self._advance(now_ms)
        self._queued[item_id] = self._queued.get(item_id, 0.0) + duration_ms
        self._settled.setdefault(item_id, 0.0)
        if duration_ms == 0:
            return
        start = now_ms if self._end is None else max(now_ms, self._end)
        end = start + duration_ms
        last = self._pending[-1] if self._pending else None
        if last is not None and last.item_id == item_id and last.end == start:
            last.end = end
        else:
            self._pending.append(_Segment(item_id, start, end))
        self._end = end

    def clear(self, now_ms: float) -> dict[str, float]:
        """Barge-in: drop all audio not yet played at ``now_ms``.

        Returns, for every item that lost audio, how many ms of it were heard (0.0 for an
        item queued but not started), so the caller can truncate each item there. Items
        already fully played are not in the result."""
        self._advance(now_ms)
        if not self._pending:
            return {}
        heard: dict[str, float] = {}
        for seg in self._pending:
            heard[seg.item_id] = self._played(seg.item_id, now_ms)
        for item_id, ms in heard.items():
            self._queued[item_id] = ms
            self._settled[item_id] = ms
        self._pending.clear()
        self._end = now_ms
        return heard

    def forget(self, item_id: str) -> None:
        """Drop an item's bookkeeping (for example once it was deleted); unplayed audio stays queued."""
        if not any(seg.item_id == item_id for seg in self._pending):
            self._queued.pop(item_id, None)
            self._settled.pop(item_id, None)

    # ------------------------------------------------------------------ queries

    def queued_ms(self, item_id: str) -> float:
        """How much audio of the item was queued (after ``clear``: how much was kept)."""
        return self._queued.get(item_id, 0.0)

    def played_ms(self, item_id: str, now_ms: float) -> float:
        """How much of the item the user has heard by ``now_ms``; never more than queued."""
        self._advance(now_ms)
        return self._played(item_id, now_ms)

    def playing_item(self, now_ms: float) -> str | None:
        """The item being heard at ``now_ms``, or ``None`` in silence."""
        self._advance(now_ms)
        if self._pending and self._pending[0].start <= now_ms:
            return self._pending[0].item_id
        return None

    def speaking(self, now_ms: float) -> bool:
        """Whether assistant audio is audible at ``now_ms``."""
        return self.playing_item(now_ms) is not None

    def finished_at(self) -> float | None:
        """When the last queued audio ends (or ended, or was cut); ``None`` if none was queued."""
        return self._end

    # ------------------------------------------------------------------ internals

    def _advance(self, now_ms: float) -> None:
        if self._now is not None and now_ms < self._now:
            raise ValueError(f"time went backwards: {now_ms} after {self._now}")
        self._now = now_ms
        while self._pending and self._pending[0].end <= now_ms:
            seg = self._pending.popleft()
            self._settled[seg.item_id] += seg.end - seg.start

    def _played(self, item_id: str, now_ms: float) -> float:
        played = self._settled.get(item_id, 0.0)
        for seg in self._pending:
            if seg.start >= now_ms:
                break
            if seg.item_id == item_id:
                played += min(now_ms, seg.end) - seg.start
        return min(played, self._queued.get(item_id, 0.0))
