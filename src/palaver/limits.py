"""Server-wide limits that every transport shares: the session counter and the idle clock.

``PALAVER_MAX_SESSIONS`` caps the sessions alive at once across WebSocket sessions, SIP calls
(and later WebRTC). The app makes one :class:`SessionLimit` at startup and hands it to each
transport; a transport takes a :class:`SessionSlot` before it starts a session (a WebSocket
before the upgrade, a SIP call when its INVITE arrives) and gives it back when the session ends,
whichever way. A slot is given back at most once however many times ``release`` is called, so
a counter can neither leak nor go negative. A sideband socket attaches to a call's session and
takes no slot.

:class:`IdleClock` is the pure part of the WebSocket idle timeout: time is passed in.

This module sits beside ``config.py`` (not in ``server/``) because transports and calls, which
sit below the server, take slots from it.
"""

from __future__ import annotations

from palaver.config import ConfigError, Settings

__all__ = ["IdleClock", "SessionLimit", "SessionSlot", "check_limit_settings"]


def check_limit_settings(settings: Settings) -> None:
    """Refuse limit settings that cannot work (raises ``ConfigError``); called at startup."""
    if settings.max_sessions < 0:
        raise ConfigError("PALAVER_MAX_SESSIONS must be 0 (no limit) or more")
    if settings.ws_ping_seconds < 0:
        raise ConfigError("PALAVER_WS_PING_SECONDS must be 0 (no pings) or more")
    if settings.ws_idle_seconds < 0:
        raise ConfigError("PALAVER_WS_IDLE_SECONDS must be 0 (never idle) or more")
    if settings.ws_max_frame_bytes < 1:
        raise ConfigError("PALAVER_WS_MAX_FRAME_BYTES must be positive")
    if settings.http_max_body_bytes < 1:
        raise ConfigError("PALAVER_HTTP_MAX_BODY_BYTES must be positive")


class SessionSlot:
    """One session's place under the limit; ``release()`` gives it back (once; later calls do nothing)."""

    __slots__ = ("_limit", "kind")

    def __init__(self, limit: SessionLimit, kind: str) -> None:
        self._limit: SessionLimit | None = limit
        self.kind = kind

    @property
    def held(self) -> bool:
        return self._limit is not None

    def release(self) -> None:
        limit, self._limit = self._limit, None
        if limit is not None:
            limit._give_back()


class SessionLimit:
    """At most ``maximum`` slots held at once (0: no limit, only counted)."""

    def __init__(self, maximum: int) -> None:
        if maximum < 0:
            raise ValueError("maximum must be 0 (no limit) or more")
        self.maximum = maximum
        self._held = 0

    @property
    def held(self) -> int:
        """Sessions alive now."""
        return self._held

    @property
    def full(self) -> bool:
        return self.maximum > 0 and self._held >= self.maximum

    def acquire(self, kind: str = "session") -> SessionSlot | None:
        """A slot, or None when the limit is reached. ``kind`` ("websocket", "sip") is for logs."""
        if self.full:
            return None
        self._held += 1
        return SessionSlot(self, kind)

    def _give_back(self) -> None:
        if self._held <= 0:  # impossible through SessionSlot; guard the invariant anyway
            raise RuntimeError("session slot released more often than taken")
        self._held -= 1


class IdleClock:
    """When a session has been idle for ``seconds`` (0: never). ``touch(now)`` on any activity."""

    def __init__(self, seconds: float, now: float) -> None:
        self.seconds = seconds
        self._last = now

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def touch(self, now: float) -> None:
        if now > self._last:
            self._last = now

    def remaining(self, now: float) -> float:
        """Seconds until idle (0 or less: idle now); infinite when disabled."""
        if not self.enabled:
            return float("inf")
        return self._last + self.seconds - now

    def expired(self, now: float) -> bool:
        return self.remaining(now) <= 0
