"""Inbound policy: open on loopback, allow-listed sources, Digest challenge and verify, 403."""

from __future__ import annotations

import ipaddress

from palaver.sip import (
    IncomingCall,
    Peer,
    Response,
    authorization,
    choose_challenge,
    parse_auth_header,
)

from .uapeer import SDP_OFFER, UAC, Harness, in_dialog_text, invite_text, statuses, to_tag

STRANGER = Peer("udp", "203.0.113.50", 5060)
NETS = (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32"))


def test_no_allow_list_and_no_credentials_admits_everyone() -> None:
    h = Harness()
    h.send(invite_text(), SDP_OFFER, peer=STRANGER)
    assert [type(e) for e in h.events()] == [IncomingCall]


def test_allow_listed_source_is_admitted_and_others_forbidden() -> None:
    h = Harness(allow_from=NETS)
    h.send(invite_text(), SDP_OFFER, peer=UAC)
    assert [type(e) for e in h.events()] == [IncomingCall]
    sent = h.send(invite_text(branch="z9hG4bK-s", call_id="s1"), SDP_OFFER, peer=STRANGER)
    assert statuses(sent) == [403] and to_tag(sent[0][0])
    assert h.events() == []
    v6 = Peer("udp", "2001:db8::7", 5060)
    h.send(invite_text(branch="z9hG4bK-6", call_id="s6"), SDP_OFFER, peer=v6)
    assert [type(e) for e in h.events()] == [IncomingCall]
    mapped = Peer("udp", "::ffff:192.0.2.77", 5060)
    h.send(invite_text(branch="z9hG4bK-m", call_id="sm"), SDP_OFFER, peer=mapped)
    assert [type(e) for e in h.events()] == [IncomingCall]


def test_empty_allow_list_admits_nobody() -> None:
    h = Harness(allow_from=())
    assert statuses(h.send(invite_text(), SDP_OFFER)) == [403]


def test_policy_also_covers_out_of_dialog_options_but_not_ack_or_cancel() -> None:
    h = Harness(allow_from=NETS)
    text = invite_text().replace("INVITE", "OPTIONS").replace("Content-Type: application/sdp", "")
    assert statuses(h.send(text, peer=STRANGER)) == [403]
    cancel = invite_text().replace("INVITE", "CANCEL").replace("Content-Type: application/sdp", "")
    assert statuses(h.send(cancel, peer=STRANGER)) == [481]  # not challenged, not forbidden
    assert h.send(in_dialog_text("ACK", "x", cseq=1), peer=STRANGER) == []


def test_in_dialog_requests_are_not_challenged() -> None:
    h = Harness(allow_from=NETS, inbound_credentials={"alice": "pw"})
    call, tag = h.confirmed()
    # a BYE from elsewhere (e.g. via another proxy) still belongs to the dialog
    assert statuses(h.send(in_dialog_text("BYE", tag), peer=STRANGER)) == [200]
    assert [e.call for e in h.events()] == [call]


def challenge_of(resp: Response) -> str:
    assert resp.status == 401
    values = resp.headers.get_all("WWW-Authenticate")
    chosen = choose_challenge(values)
    assert chosen is not None
    return str(chosen)


def authorized_invite(h: Harness, resp: Response, *, password: str = "pw", cseq: int = 2) -> str:
    challenge = choose_challenge(resp.headers.get_all("WWW-Authenticate"))
    assert challenge is not None
    value = authorization(
        challenge,
        method="INVITE",
        uri="sip:agent@192.0.2.1:5060",
        username="alice",
        password=password,
        cnonce="c",
    )
    return invite_text(branch=f"z9hG4bK-auth{cseq}", cseq=cseq, extra=f"Authorization: {value}")


def test_credentials_challenge_then_admit() -> None:
    h = Harness(allow_from=NETS, inbound_credentials={"alice": "pw"}, realm="palaver.test")
    sent = h.send(invite_text(), SDP_OFFER, peer=STRANGER)
    ((resp, _),) = sent
    assert isinstance(resp, Response) and resp.status == 401 and to_tag(resp)
    challenge = parse_auth_header(resp.headers.get_all("WWW-Authenticate")[0], "WWW-Authenticate")
    assert challenge.param("realm") == "palaver.test" and challenge.qop_options == ("auth",)
    assert challenge.param("algorithm") == "MD5"
    # the ACK of the 401 is absorbed by the transaction
    assert h.send(in_dialog_text("ACK", to_tag(resp), cseq=1, branch="z9hG4bK-inv1"), peer=STRANGER) == []
    h.now = 5.0
    h.send(authorized_invite(h, resp), SDP_OFFER, peer=STRANGER)
    (event,) = h.events()
    assert isinstance(event, IncomingCall) and event.peer == STRANGER


def test_wrong_password_is_challenged_again() -> None:
    h = Harness(inbound_credentials={"alice": "pw"})
    ((resp, _),) = h.send(invite_text(), SDP_OFFER, peer=STRANGER)
    assert isinstance(resp, Response)
    sent = h.send(authorized_invite(h, resp, password="nope"), SDP_OFFER, peer=STRANGER)
    assert statuses(sent) == [401]
    assert "stale" not in challenge_of(sent[0][0])  # type: ignore[arg-type]
    assert h.events() == []


def test_stale_nonce_is_challenged_with_stale_true() -> None:
    h = Harness(inbound_credentials={"alice": "pw"}, nonce_ttl=30.0)
    ((resp, _),) = h.send(invite_text(), SDP_OFFER, peer=STRANGER)
    assert isinstance(resp, Response)
    h.now = 100.0
    sent = h.send(authorized_invite(h, resp), SDP_OFFER, peer=STRANGER)
    assert statuses(sent) == [401]
    assert "stale=true" in sent[0][0].headers.get_all("WWW-Authenticate")[0]


def test_sha256_offered_first_when_configured() -> None:
    h = Harness(inbound_credentials={"alice": "pw"}, digest_algorithms=("SHA-256", "MD5"))
    ((resp, _),) = h.send(invite_text(), SDP_OFFER, peer=STRANGER)
    algos = [
        parse_auth_header(v, "WWW-Authenticate").param("algorithm")
        for v in resp.headers.get_all("WWW-Authenticate")
    ]
    assert algos == ["SHA-256", "MD5"]
    assert isinstance(resp, Response)
    h.send(authorized_invite(h, resp), SDP_OFFER, peer=STRANGER)
    assert [type(e) for e in h.events()] == [IncomingCall]
