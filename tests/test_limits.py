"""The session counter every transport shares, the idle clock, and the limit settings' checks."""

from __future__ import annotations

import pytest

from palaver.config import ConfigError, Settings
from palaver.limits import IdleClock, SessionLimit, check_limit_settings


def test_slots_are_taken_up_to_the_maximum_then_refused() -> None:
    limit = SessionLimit(2)
    first, second = limit.acquire("websocket"), limit.acquire("sip")
    assert first is not None and second is not None
    assert limit.held == 2 and limit.full
    assert limit.acquire() is None
    assert limit.held == 2  # a refusal takes nothing


def test_a_slot_is_given_back_once_however_often_it_is_released() -> None:
    limit = SessionLimit(2)
    slot = limit.acquire()
    other = limit.acquire()
    assert slot is not None and other is not None
    slot.release()
    slot.release()
    slot.release()
    assert limit.held == 1  # not 0, and never negative: the other session still holds its slot
    assert not slot.held and other.held
    other.release()
    assert limit.held == 0


def test_slots_never_leak_after_many_sessions() -> None:
    limit = SessionLimit(3)
    for _ in range(100):
        slots = [limit.acquire() for _ in range(3)]
        assert all(s is not None for s in slots)
        assert limit.acquire() is None
        for s in slots:
            assert s is not None
            s.release()
            s.release()
    assert limit.held == 0
    assert [limit.acquire() is not None for _ in range(4)] == [True, True, True, False]


def test_zero_means_no_limit_but_still_counts() -> None:
    limit = SessionLimit(0)
    slots = [limit.acquire() for _ in range(500)]
    assert all(s is not None for s in slots) and limit.held == 500 and not limit.full
    for s in slots:
        assert s is not None
        s.release()
    assert limit.held == 0


def test_a_negative_maximum_is_refused() -> None:
    with pytest.raises(ValueError):
        SessionLimit(-1)


def test_idle_clock_expires_after_its_seconds_and_touch_postpones() -> None:
    clock = IdleClock(10.0, now=100.0)
    assert clock.remaining(100.0) == 10.0
    assert not clock.expired(109.9)
    clock.touch(105.0)
    assert not clock.expired(114.9) and clock.expired(115.0)
    clock.touch(101.0)  # a late touch with an older time never moves the clock back
    assert clock.expired(115.0)


def test_idle_clock_with_zero_seconds_never_expires() -> None:
    clock = IdleClock(0.0, now=0.0)
    assert not clock.enabled
    assert not clock.expired(1e12) and clock.remaining(1e12) == float("inf")


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [
        ("max_sessions", -1, "PALAVER_MAX_SESSIONS"),
        ("ws_ping_seconds", -1.0, "PALAVER_WS_PING_SECONDS"),
        ("ws_idle_seconds", -0.5, "PALAVER_WS_IDLE_SECONDS"),
        ("ws_max_frame_bytes", 0, "PALAVER_WS_MAX_FRAME_BYTES"),
        ("http_max_body_bytes", 0, "PALAVER_HTTP_MAX_BODY_BYTES"),
    ],
)
def test_unusable_limit_settings_stop_startup_naming_the_variable(
    field: str, value: float, name: str
) -> None:
    with pytest.raises(ConfigError, match=name):
        check_limit_settings(Settings(**{field: value}))


def test_the_defaults_and_zeroes_that_disable_are_accepted() -> None:
    check_limit_settings(Settings())
    check_limit_settings(Settings(max_sessions=0, ws_ping_seconds=0, ws_idle_seconds=0))
