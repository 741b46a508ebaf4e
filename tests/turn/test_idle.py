"""IdleTimer: idle_timeout_ms on injected wall time."""

from __future__ import annotations

import pytest

from palaver.turn import IdleTimer


def test_starts_disarmed() -> None:
    timer = IdleTimer()
    assert not timer.armed
    assert timer.deadline() is None
    assert not timer.expired(1e12)


def test_fires_once_at_the_deadline() -> None:
    timer = IdleTimer()
    timer.arm(1000.0, 5000)
    assert timer.armed
    assert timer.deadline() == 6000.0
    assert not timer.expired(5999.9)
    assert timer.expired(6000.0)
    assert not timer.armed
    assert timer.deadline() is None
    assert not timer.expired(6001.0)


def test_late_check_still_fires() -> None:
    timer = IdleTimer()
    timer.arm(0.0, 100)
    assert timer.expired(10_000.0)


def test_cancel() -> None:
    timer = IdleTimer()
    timer.arm(0.0, 100)
    timer.cancel()
    assert timer.deadline() is None
    assert not timer.expired(200.0)


def test_rearm_replaces_the_deadline() -> None:
    timer = IdleTimer()
    timer.arm(0.0, 100)
    timer.arm(50.0, 100)
    assert timer.deadline() == 150.0
    assert not timer.expired(120.0)
    assert timer.expired(150.0)


def test_zero_timeout_fires_immediately() -> None:
    timer = IdleTimer()
    timer.arm(42.0, 0)
    assert timer.expired(42.0)


def test_negative_timeout_is_rejected() -> None:
    with pytest.raises(ValueError, match="timeout_ms"):
        IdleTimer().arm(0.0, -1)
