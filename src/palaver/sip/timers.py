"""SIP transaction timers (RFC 3261 §17 and Table 4, RFC 6026 Timers L and M)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["DEFAULT_TIMERS", "Timer", "TimerConfig"]


class Timer(StrEnum):
    """Transaction timers, named as in the RFCs; TRYING is the 200 ms 100 (Trying) delay (§17.2.1)."""

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"
    TRYING = "trying"


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1 (RTT estimate), T2 (max non-INVITE retransmit interval), T4 (max network lifetime).

    ``d`` is Timer D on unreliable transports (at least 32 s).  ``trying`` is how
    long an INVITE server transaction waits for the TU before sending 100
    (Trying) itself; None leaves the 100 to the TU.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    d: float = 32.0
    trying: float | None = 0.2

    def initial(self, timer: Timer, reliable: bool) -> float | None:
        """First duration of ``timer``; None when it is not used on this transport."""
        t1_64 = 64 * self.t1
        if timer in (Timer.A, Timer.E, Timer.G):
            return None if reliable else self.t1
        if timer in (Timer.B, Timer.F, Timer.H, Timer.L, Timer.M):
            return t1_64
        if timer is Timer.D:
            return 0.0 if reliable else self.d
        if timer in (Timer.I, Timer.K):
            return 0.0 if reliable else self.t4
        if timer is Timer.J:
            return 0.0 if reliable else t1_64
        return self.trying

    def backoff(self, timer: Timer, previous: float, proceeding: bool) -> float:
        """Next interval of a retransmission timer that just fired (A doubles; E and G cap at T2)."""
        if timer is Timer.A:
            return 2 * previous
        if timer is Timer.E and proceeding:
            return self.t2
        return min(2 * previous, self.t2)


DEFAULT_TIMERS = TimerConfig()
