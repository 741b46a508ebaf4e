"""The SIP gateway's small pure pieces: DTMF in SIP INFO bodies, the dialled number."""

from __future__ import annotations

import pytest

from palaver.calls.sip_gateway import _dialled, _dtmf_relay_digit
from palaver.sip import parse_uri


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("Application/DTMF-Relay; charset=utf-8", b"Signal= #\r\nDuration=100", "#"),
        ("application/dtmf-relay", b"signal=a", "A"),
        ("application/dtmf", b"9", "9"),
        ("application/dtmf-relay", b"Signal=55", None),
        ("application/dtmf-relay", b"Duration=160", None),
        ("application/dtmf", b"x", None),
        ("text/plain", b"Signal=5", None),
        (None, b"Signal=5", None),
    ],
)
def test_sip_info_dtmf(content_type: str | None, body: bytes, digit: str | None) -> None:
    assert _dtmf_relay_digit(content_type, body) == digit


@pytest.mark.parametrize(
    ("uri", "dialled"),
    [("sip:1000@pbx.example.com", "1000"), ("sip:pbx.example.com", ""), ("tel:+14155550123", "+14155550123")],
)
def test_the_dialled_number_is_the_user_part(uri: str, dialled: str) -> None:
    assert _dialled(parse_uri(uri)) == dialled
