"""The SIP transport with real peers: SIPp over UDP and TCP, baresip over TLS (with SRTP offered).

A minimal fake core refuses every INVITE with 486, so each peer runs a complete transaction
(INVITE, 486, ACK) through our sockets: SIPp's reject scenario must pass, baresip must see the 486.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from palaver.sip.message import Message, Request
from palaver.sip.peer import Peer
from palaver.sip.status import make_response
from palaver.transports.sip import SipTransport, SipTransportConfig
from tests.support.sip_peers import SCENARIOS, BaresipCaller, make_tls_cert, run_sipp_async, write_wav

pytestmark = pytest.mark.e2e


class RejectingCore:
    """486 to every INVITE (retransmissions included), 200 to BYE/OPTIONS; records what came."""

    def __init__(self) -> None:
        self.received: list[tuple[Message, Peer]] = []
        self.outbox: list[tuple[Message, Peer]] = []
        self.errors: list[Peer] = []

    def receive(self, message: Message, peer: Peer, now: float) -> None:
        self.received.append((message, peer))
        if isinstance(message, Request) and message.method == "INVITE":
            self.outbox.append((make_response(message, 486, to_tag="busy"), peer))
        elif isinstance(message, Request) and message.method in ("BYE", "OPTIONS"):
            self.outbox.append((make_response(message, 200, to_tag="busy"), peer))

    def transport_error(self, peer: Peer, now: float) -> None:
        self.errors.append(peer)

    def transmits(self) -> list[tuple[Message, Peer]]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None

    def methods(self) -> list[str]:
        return [m.method for m, _ in self.received if isinstance(m, Request)]


@pytest.mark.parametrize(("sipp_transport", "peer_transport"), [("u1", "udp"), ("t1", "tcp")])
async def test_sipp_call_rejected_through_our_transport(
    sipp_transport: str, peer_transport: str, tmp_path: Path
) -> None:
    core = RejectingCore()
    sip = SipTransport(SipTransportConfig(host="127.0.0.1", port=0), core)
    await sip.start()
    try:
        host, port = sip.contacts["udp"]
        result = await run_sipp_async(
            SCENARIOS / "uac_reject.xml",
            f"{host}:{port}",
            workdir=tmp_path / "sipp",
            transport=sipp_transport,
            timeout_s=20,
        )
        assert result.ok, result.describe()
    finally:
        await sip.close()
    methods = core.methods()
    assert methods[0] == "INVITE" and methods[-1] == "ACK"
    assert {peer.transport for _, peer in core.received} == {peer_transport}


async def test_baresip_over_tls_with_srtp_reaches_our_tls_listener(tmp_path: Path) -> None:
    tls = make_tls_cert(tmp_path / "tls")
    core = RejectingCore()
    sip = SipTransport(
        SipTransportConfig(host="127.0.0.1", port=0, tls_cert=str(tls.cert), tls_key=str(tls.key)), core
    )
    await sip.start()
    try:
        host, port = sip.contacts["tls"]
        wav = write_wav(tmp_path / "silence.wav", b"\0\0" * 16000)
        with BaresipCaller(tmp_path / "baresip", wav=wav, srtp=True, tls=True) as caller:
            outcome = await caller.dial_async(f"sip:agent@{host}:{port};transport=tls", seconds=10)
    finally:
        await sip.close()
    assert "486" in outcome.log, outcome.log[-3000:]
    invites = [(m, p) for m, p in core.received if isinstance(m, Request) and m.method == "INVITE"]
    assert invites, outcome.log[-3000:]
    invite, peer = invites[0]
    assert peer.transport == "tls" and peer.connection is not None
    assert b"RTP/SAVP" in invite.body and b"a=crypto:" in invite.body
    assert "ACK" in core.methods()
