"""What a test does when a real peer it needs is missing from the machine.

Under ``CI=true`` a missing peer (SIPp, baresip, kamailio, linphonec, flite, node and the npm
reference server, the root-only packet capture) **fails** the test: CI must run every test, and a
green run that skipped the phone-call tests would be a lie. Anywhere else the test is skipped,
with a message that says how to get the peer (``scripts/test`` installs all of them).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["in_ci", "missing_peer", "require_packet_capture"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_peer(what: str, how: str) -> NoReturn:
    """Fail (under CI) or skip (elsewhere) because ``what`` is missing; ``how`` says how to get it."""
    message = f"{what} is missing: {how}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing peer fails the run)", pytrace=False)
    pytest.skip(message)


def require_packet_capture() -> None:
    """An ``AF_PACKET`` socket on ``lo`` (the RTP sniffers), which needs root or CAP_NET_RAW."""
    import socket

    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except (PermissionError, OSError, AttributeError):
        missing_peer("a packet socket on lo (root or CAP_NET_RAW)", "run the tests as root, as CI does")
