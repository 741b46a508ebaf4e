"""RFC 4475 torture messages through the UA core: the answers a conforming UAS gives."""

from __future__ import annotations

import pytest

from palaver.sip import IncomingCall, Peer, Response, SipParseError, parse_message

from .conftest import load
from .uapeer import Harness

PEER = Peer("udp", "192.0.2.50", 5060)

# (folder, file) -> what the UA sends back (statuses), per the README's "conforming behaviour".
EXPECTED: dict[tuple[str, str], list[int]] = {
    ("valid", "intmeth"): [501],  # unknown method
    ("valid", "esc02"): [501],  # RE%47IST%45R is not REGISTER
    ("valid", "dblreq"): [405],  # REGISTER: we are not a registrar
    ("valid", "escnull"): [405],
    ("valid", "mpart01"): [405],  # MESSAGE
    ("valid", "lwsdisp"): [200],  # OPTIONS
    ("valid", "wsinv"): [481],  # has a To tag: a dialog we do not know
    ("valid", "semiuri"): [200],
    ("valid", "transports"): [200],
    ("application", "bext01"): [420],
    ("application", "invut"): [415],
    ("application", "novelsc"): [416],
    ("application", "unkscm"): [416],
    ("application", "regaut01"): [405],
    ("application", "unksm2"): [405],
    ("application", "cparam01"): [405],
    ("application", "cparam02"): [405],
    ("application", "regescrt"): [405],
    ("application", "sdp01"): [406],
    ("application", "zeromf"): [200],  # a UAS processes Max-Forwards 0 normally
    ("transaction", "badbranch"): [200],  # RFC 2543 matching fallback
    ("valid", "noreason"): [],  # stray responses are dropped
    ("valid", "unreason"): [],
    ("application", "bcast"): [],  # never answered, never sent to 255.255.255.255
}
CALLS = [("valid", "esc01"), ("valid", "longreq"), ("compat", "inv2543")]


@pytest.mark.parametrize(("folder", "name"), sorted(EXPECTED))
def test_torture_answers(folder: str, name: str) -> None:
    h = Harness()
    msg = parse_message(load(folder, name))
    sent = h.feed(msg, PEER)
    assert [m.status for m, _ in sent if isinstance(m, Response)] == EXPECTED[folder, name]
    assert all(p.host != "255.255.255.255" for _, p in sent)
    assert h.events() == []


@pytest.mark.parametrize(("folder", "name"), CALLS)
def test_torture_invites_become_calls(folder: str, name: str) -> None:
    h = Harness()
    msg = parse_message(load(folder, name))
    assert h.feed(msg, PEER) == []
    (event,) = h.events()
    assert isinstance(event, IncomingCall)
    h.ua.reject(event.call, 486, 0.0)
    ((resp, _),) = h.ua.transmits()
    assert isinstance(resp, Response) and resp.status == 486


@pytest.mark.parametrize(("folder", "name"), [("application", "insuf"), ("application", "multi01")])
def test_torture_refused_by_the_parser(folder: str, name: str) -> None:
    with pytest.raises(SipParseError):
        parse_message(load(folder, name))


@pytest.mark.parametrize("name", ["esc01", "longreq", "unreason", "wsinv"])  # those with an SDP body
def test_valid_torture_invites_have_answerable_sdp(name: str) -> None:
    """The SDP of every valid RFC 4475 INVITE parses and gets an answer (esc01 and longreq carry
    ``a=rtpmap:31 LPC`` with no clock rate: ignored, not fatal)."""
    from palaver.sdp import SessionDescription, answer
    from palaver.sip import parse_message

    message = parse_message(load("valid", name))
    offer = SessionDescription.parse(message.body)
    sdp, chosen = answer(offer, local_ip="127.0.0.1", local_port=40000, session_id=1)
    assert chosen.encoding in ("PCMU", "PCMA") and str(sdp).startswith("v=0")
