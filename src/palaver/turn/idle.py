"""The ``idle_timeout_ms`` timer of ``server_vad``.

OpenAI fires ``input_audio_buffer.timeout_triggered`` (then commits a silent user item and
answers) when the user stays silent for ``idle_timeout_ms`` after the assistant's last audio
finished *playing*. The session arms the timer at that moment (``PlayoutTracker.finished_at()``)
and cancels it when speech starts or a new response begins.

Sans-I/O, in the aioquic style: times are wall-clock milliseconds passed in by the caller;
the I/O adapter sleeps until :meth:`IdleTimer.deadline` and then asks :meth:`IdleTimer.expired`.
"""

from __future__ import annotations

__all__ = ["IdleTimer"]


class IdleTimer:
    """One re-armable deadline that fires at most once per arming."""

    def __init__(self) -> None:
        self._deadline: float | None = None

    @property
    def armed(self) -> bool:
        return self._deadline is not None

    def arm(self, now_ms: float, timeout_ms: int) -> None:
        """Fire ``timeout_ms`` after ``now_ms``; re-arming replaces any earlier deadline."""
        if timeout_ms < 0:
            raise ValueError("timeout_ms must be >= 0")
        self._deadline = now_ms + timeout_ms

    def cancel(self) -> None:
        self._deadline = None

    def deadline(self) -> float | None:
        """When the timer fires (wall ms), or ``None`` when disarmed."""
        return self._deadline

    def expired(self, now_ms: float) -> bool:
        """True once when ``now_ms`` has reached the deadline; the timer is then disarmed."""
        if self._deadline is None or now_ms < self._deadline:
            return False
        self._deadline = None
        return True
