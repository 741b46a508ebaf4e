"""Call control of SIP calls end to end: reject, refer, hangup, routing without a webhook, digest
auth, and malformed input, each against the real server with a SIPp scenario written for it.

Three servers for the whole module (each started once):

- ``hooked``: a webhook decides each call, the way OpenAI's SIP calls go; the test sets the
  receiver's ``decide`` (the SDK's ``reject`` / ``accept``) and then drives the call over REST
  with the stock ``openai`` SDK while watching it on a sideband (``?call_id=``);
- ``routed``: no webhook and a ``PALAVER_SIP_AGENTS`` file, so a call is answered at once by
  the agent of the number dialled; it also takes the malformed datagrams;
- ``guarded``: ``PALAVER_SIP_CREDENTIALS=alice:secret``, so INVITEs need digest credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import re
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.sip.conftest import load as load_torture
from tests.support.call_watch import (
    call_id_from_log,
    distinct,
    rest_client,
    sipp_messages,
    system_notes,
    watch_call,
)
from tests.support.server import PalaverServer
from tests.support.sip_peers import (
    SCENARIOS,
    SippProcess,
    SippResult,
    require_binary,
    run_sipp_async,
    wav_to_rtp_pcap,
    write_wav,
)
from tests.support.sip_server import accept_with, hooked_server, scripted_server
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

API_KEY = "sk-palaver-call-control"
SECRET = "whsec_" + base64.b64encode(b"palaver-call-control-secret-32b!").decode()
TRANSFER_TARGET = "sip:agent2@127.0.0.1:5099"
SALES = "You are the sales line of Example Ltd."
FRONT_DESK = "You are the front desk of Example Ltd."
PHONE_LINE = "You answer calls to the international number."
#: Every wait is bounded; these are generous on purpose (shared, noisy machines).
CALL_TIMEOUT = 40.0


@pytest.fixture(scope="module")
def hooked(scripted_llm: Any) -> Iterator[tuple[PalaverServer, WebhookReceiver]]:
    require_binary("sipp")
    with hooked_server(scripted_llm, api_key=API_KEY, secret=SECRET) as (server, hook):
        yield server, hook


@pytest.fixture(scope="module")
def routed(scripted_llm: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PalaverServer]:
    require_binary("sipp")
    agents = tmp_path_factory.mktemp("agents") / "agents.json"
    agents.write_text(
        json.dumps(
            {
                "default": {"instructions": FRONT_DESK},
                "sales": {"instructions": SALES},
                "14155550123": {"instructions": PHONE_LINE},
            }
        )
    )
    # These tests read the dialled numbers in the log, as an operator does with PALAVER_LOG_PII
    # (the default redacts them: tests/e2e/test_log_privacy.py).
    with scripted_server(
        scripted_llm, api_key=API_KEY, PALAVER_SIP_AGENTS=str(agents), PALAVER_LOG_PII="true"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def guarded(scripted_llm: Any) -> Iterator[PalaverServer]:
    require_binary("sipp")
    with scripted_server(  # the log's dialled numbers are read, as with routed
        scripted_llm, api_key=API_KEY, PALAVER_SIP_CREDENTIALS="alice:secret", PALAVER_LOG_PII="true"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def silence_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One second of silent PCMA RTP: what the scenarios play while the test drives the call."""
    folder = tmp_path_factory.mktemp("media")
    wav = write_wav(folder / "silence.wav", b"\0\0" * 8000)
    wav_to_rtp_pcap(wav, folder / "silence.pcap")
    return folder / "silence.pcap"


def _sipp(
    scenario: str,
    server: PalaverServer,
    workdir: Path,
    service: str,
    pcap: Path | None = None,
    **options: Any,
) -> SippProcess:
    return SippProcess(
        SCENARIOS / scenario,
        f"127.0.0.1:{server.sip_port}",
        workdir=workdir,
        pcaps={"speech.pcap": pcap} if pcap is not None else {},
        service=service,
        timeout_s=CALL_TIMEOUT,
        **options,
    )


async def _incoming(hook: WebhookReceiver, service: str, timeout: float = 20.0) -> Any:
    """The webhook event of the call to ``service`` (other tests' late events are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            event = await asyncio.to_thread(hook.wait_event, timeout)
            to = [h.value for h in event.data.sip_headers if h.name == "To"]
            if to and f"sip:{service}@" in to[0]:
                return event


def _received(result: SippResult, *, method: str | None = None, status: int | None = None) -> list[Any]:
    return [
        m
        for m in distinct(sipp_messages(result))
        if m.received and (method is None or m.method == method) and (status is None or m.status == status)
    ]


def _sent(result: SippResult, *, method: str | None = None) -> list[Any]:
    return [
        m
        for m in distinct(sipp_messages(result))
        if not m.received and (method is None or m.method == method)
    ]


async def _sideband_refused(server: PalaverServer, call_id: str) -> int | None:
    """The HTTP status a sideband gets for ``call_id`` when the server refuses the upgrade."""
    async with rest_client(server, API_KEY) as client:
        try:
            conn = await client.realtime.connect(call_id=call_id, max_retries=0).enter()
        except Exception as exc:
            response = getattr(exc, "response", None)
            return getattr(response, "status_code", None) or getattr(exc, "status_code", None)
        await conn.close()
        return 101


Clients = Callable[[PalaverServer], openai.AsyncOpenAI]


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """Makes SDK clients for the test's servers; closes them at the end."""
    made: list[openai.AsyncOpenAI] = []

    def make(server: PalaverServer) -> openai.AsyncOpenAI:
        made.append(rest_client(server, API_KEY))
        return made[-1]

    yield make
    for client in made:
        await client.close()


# ------------------------------------------------------------------------------ reject


async def test_webhook_rejects_with_486_and_the_call_is_gone(
    hooked: tuple[PalaverServer, WebhookReceiver], tmp_path: Path, clients: Clients
) -> None:
    server, hook = hooked

    def reject(event: Any) -> None:
        with openai.OpenAI(api_key=API_KEY, base_url=server.http_url + "/v1", max_retries=0) as client:
            client.realtime.calls.reject(event.data.call_id, status_code=486)

    hook.decide = reject
    result = await run_sipp_async(
        SCENARIOS / "uac_reject.xml",
        f"127.0.0.1:{server.sip_port}",
        workdir=tmp_path / "sipp",
        service="busy",
        timeout_s=CALL_TIMEOUT,
    )
    assert result.ok, result.describe()
    incoming = await _incoming(hook, "busy")
    call_id = incoming.data.call_id
    assert hook.decision_errors == [], hook.decision_errors

    # SIPp heard 180 then 486 and ACKed the 486 in its transaction; nothing else was final.
    finals = [m.status for m in _received(result) if m.status is not None and m.status >= 200]
    assert finals == [486], result.describe()
    invite, ack = _sent(result)
    assert (invite.method, ack.method) == ("INVITE", "ACK")
    assert ack.header("Via") == invite.header("Via")  # same branch: the 486's own transaction

    # The call is over: no sideband, and a late accept is refused with OpenAI's 409.
    assert await _sideband_refused(server, call_id) == 404
    client = clients(server)
    with pytest.raises(openai.ConflictError) as late:
        await client.realtime.calls.accept(call_id, type="realtime")
    assert late.value.code == "call_already_rejected"
    with pytest.raises(openai.NotFoundError):
        await client.realtime.calls.accept("rtc_doesnotexist", type="realtime")
    assert f"call {call_id} rejected with 486" in server.stderr_text()


# ------------------------------------------------------------------------------- refer


async def test_refer_reports_progress_on_the_sideband_then_hangs_up(
    hooked: tuple[PalaverServer, WebhookReceiver], tmp_path: Path, silence_pcap: Path, clients: Clients
) -> None:
    server, hook = hooked
    hook.decide = accept_with(server, API_KEY, instructions="You transfer callers.")
    client = clients(server)

    with _sipp("uac_refer.xml", server, tmp_path / "sipp", "transfer", silence_pcap) as sipp:
        incoming = await _incoming(hook, "transfer")
        call_id = incoming.data.call_id

        async def transfer() -> None:
            await client.realtime.calls.refer(call_id, target_uri=TRANSFER_TARGET)

        watched = await watch_call(
            server, call_id, api_key=API_KEY, on_created=transfer, timeout=CALL_TIMEOUT
        )
        result = await sipp.wait_async()
    assert result.ok, result.describe()
    assert hook.decision_errors == [], hook.decision_errors

    # SIPp got the REFER with our target (its log and the message itself) ...
    logged = " ".join(result.trace("logs").split())
    assert f"refer-to: <{TRANSFER_TARGET}>" in logged, logged
    (refer,) = _received(result, method="REFER")
    assert [v.strip("<>") for v in refer.header("Refer-To")] == [TRANSFER_TARGET]
    # ... and after its final NOTIFY (200 sipfrag) Palaver hung up: the BYE came from us.
    assert len(_received(result, method="BYE")) >= 1, result.describe()
    assert _sent(result, method="BYE") == [], "SIPp had to hang up itself: Palaver sent no BYE"
    order = [m.header("CSeq")[0] for m in distinct(sipp_messages(result)) if m.method in ("NOTIFY", "BYE")]
    assert order[:2] == ["2 NOTIFY", "3 NOTIFY"] and order[2:] and order[2].endswith(" BYE"), order
    assert len(order) == 3, order

    # The sideband: the session, then the transfer's progress as system notes, then closed.
    assert watched.closed_cleanly, watched.error
    assert watched.events and watched.events[0].type == "session.created"
    notes = system_notes(watched.events)
    assert notes == [
        f"Transferring the caller to {TRANSFER_TARGET}.",
        "Call transfer in progress (SIP 202).",
        "Call transfer in progress (SIP 100).",
        "Call transfer succeeded (SIP 200).",
    ], notes
    assert not watched.of_type("error"), watched.of_type("error")

    # The call is over for REST too.
    with pytest.raises(openai.ConflictError) as late:
        await client.realtime.calls.refer(call_id, target_uri=TRANSFER_TARGET)
    assert late.value.code == "call_ended"
    assert f"call {call_id} ended: hung up by the server" in server.stderr_text()


# ------------------------------------------------------------------------------ hangup


async def test_rest_hangup_sends_bye_and_closes_the_sideband(
    hooked: tuple[PalaverServer, WebhookReceiver], tmp_path: Path, silence_pcap: Path, clients: Clients
) -> None:
    server, hook = hooked
    hook.decide = accept_with(server, API_KEY, instructions="You say goodbye.")
    client = clients(server)

    with _sipp("uac_hangup.xml", server, tmp_path / "sipp", "goodbye", silence_pcap) as sipp:
        incoming = await _incoming(hook, "goodbye")
        call_id = incoming.data.call_id

        async def hang_up() -> None:
            await client.realtime.calls.hangup(call_id)

        watched = await watch_call(server, call_id, api_key=API_KEY, on_created=hang_up, timeout=CALL_TIMEOUT)
        result = await sipp.wait_async()
    assert result.ok, result.describe()

    (bye,) = _received(result, method="BYE")
    (invite,) = _sent(result, method="INVITE")
    assert bye.header("Call-ID") == invite.header("Call-ID")
    assert _sent(result, method="BYE") == []
    assert [m.status for m in distinct(sipp_messages(result)) if not m.received and m.status] == [
        200
    ]  # BYE's

    assert watched.closed_cleanly, watched.error
    assert [e.type for e in watched.events[:1]] == ["session.created"]
    assert watched.events[0].session.instructions == "You say goodbye."
    assert not watched.of_type("error"), watched.of_type("error")
    with pytest.raises(openai.ConflictError) as late:
        await client.realtime.calls.hangup(call_id)
    assert late.value.code == "call_ended"


# ------------------------------------------------------------------ routing without a webhook


@pytest.mark.parametrize(
    ("dialled", "agent", "instructions"),
    [("sales", "sales", SALES), ("+14155550123", "14155550123", PHONE_LINE), ("4711", "default", FRONT_DESK)],
    ids=["named", "plus-number", "default"],
)
async def test_without_a_webhook_the_dialled_numbers_agent_answers_at_once(
    routed: PalaverServer,
    tmp_path: Path,
    silence_pcap: Path,
    dialled: str,
    agent: str,
    instructions: str,
    clients: Clients,
) -> None:
    server = routed
    client = clients(server)
    mark = len(server.stderr_text())
    with _sipp("uac_hangup.xml", server, tmp_path / "sipp", dialled, silence_pcap) as sipp:
        call_id = await call_id_from_log(server, dialled, since=mark)

        async def hang_up() -> None:
            await client.realtime.calls.hangup(call_id)

        watched = await watch_call(server, call_id, api_key=API_KEY, on_created=hang_up, timeout=CALL_TIMEOUT)
        result = await sipp.wait_async()
    assert result.ok, result.describe()
    assert watched.closed_cleanly, watched.error
    created = watched.events[0]
    assert created.type == "session.created"
    assert created.session.instructions == instructions
    assert created.session.audio.input.format.type == "audio/pcma"  # the line's codec
    log = server.stderr_text()[mark:]
    assert f"call {call_id}: no webhook configured; accepting with agent {agent!r}" in log


# ------------------------------------------------------------------------ malformed input


class _UdpProbe:
    """A UDP socket on 127.0.0.1 that sends raw datagrams to the server and reads its answers."""

    def __init__(self, server: PalaverServer) -> None:
        self.target = ("127.0.0.1", server.sip_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10.0)  # a bound for each wait; the test never relies on it elapsing
        self.port: int = self.sock.getsockname()[1]

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def answer(self) -> tuple[int, str, bytes]:
        """The next answer: its status, Call-ID and bytes."""
        data, _ = self.sock.recvfrom(65535)
        first, _, rest = data.partition(b"\r\n")
        assert first.startswith(b"SIP/2.0 "), data[:200]
        call_id = ""
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"call-id", b"i"):
                call_id = value.strip().decode()
        return int(first.split()[1]), call_id, data

    def options(self, call_id: str) -> bytes:
        """An OPTIONS whose Via points at this socket: the server answers it 200."""
        return (
            f"OPTIONS sip:probe@127.0.0.1:{self.target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:probe@127.0.0.1:{self.target[1]}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    def invite(self, call_id: str, sdp: bytes, branch: str, tag: str) -> bytes:
        return (
            f"INVITE sip:probe@127.0.0.1:{self.target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={tag}\r\n"
            f"To: <sip:probe@127.0.0.1:{self.target[1]}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:probe@127.0.0.1:{self.port}>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
        ).encode() + sdp

    def final_answer(self, call_id: str) -> tuple[int, bytes]:
        """The final answer to the request ``call_id`` (provisional ones skipped; bounded)."""
        for _ in range(10):
            status, answered, data = self.answer()
            assert answered == call_id, data[:300]
            if status >= 200:
                return status, data
        raise AssertionError(f"no final answer to {call_id}")

    def ack(self, invite: bytes, answer: bytes) -> bytes:
        """The ACK of a non-2xx ``answer`` to ``invite``: its transaction's branch, the answer's To."""

        def line(message: bytes, *names: bytes) -> bytes:
            return next(x for x in message.split(b"\r\n") if x.split(b":")[0].strip().lower() in names)

        uri = invite.split(b" ", 2)[1]
        cseq = line(invite, b"cseq").split(b":", 1)[1].split()[0]
        headers = [
            line(invite, b"via", b"v"),
            line(invite, b"from", b"f"),
            line(answer, b"to", b"t"),
            line(invite, b"call-id", b"i"),
            b"CSeq: " + cseq + b" ACK",
            b"Max-Forwards: 70",
            b"Content-Length: 0",
        ]
        return b"ACK " + uri + b" SIP/2.0\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def probe(routed: PalaverServer) -> Iterator[_UdpProbe]:
    udp = _UdpProbe(routed)
    try:
        yield udp
    finally:
        udp.close()


#: RFC 4475 §3.1.2 messages and what a conforming element answers (see the folder's README):
#: a status, or None where the message (a response) must be dropped silently.  Where the RFC
#: also allows a lenient element to repair the message, Palaver is strict and answers 400.
INVALID = {
    "badinv01": 400,
    "clerr": 400,  # over UDP
    "ncl": 400,
    "scalar02": 400,
    "scalarlg": None,  # a response
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "baddate": 400,
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 501,
    "bigcode": None,  # a response
}


@pytest.mark.parametrize("name", sorted(INVALID))
async def test_rfc4475_invalid_datagram_gets_its_answer(
    routed: PalaverServer, probe: _UdpProbe, name: str
) -> None:
    probe.send(load_torture("invalid", name))
    probe.send(probe.options(f"after-{name}"))
    # Datagrams on loopback are read in order: the bad one's answer (if any) comes first.
    answers = [await asyncio.to_thread(probe.answer)]
    if INVALID[name] is not None:
        answers.append(await asyncio.to_thread(probe.answer))
        assert answers[0][0] == INVALID[name], answers[0][2][:300]
    assert answers[-1][:2] == (200, f"after-{name}")
    assert routed.is_running()


#: RFC 4475 §3.3 requests that parse but that a UAS refuses (README), sent with their Via
#: rewritten to the probe: a UA answers where the Via says, not to the datagram's source.
REFUSED = {"bext01": 420, "unkscm": 416, "novelsc": 416, "invut": 415, "sdp01": 406}


def _via_to_probe(data: bytes, port: int) -> bytes:
    lines = data.split(b"\r\n")
    (index,) = [n for n, line in enumerate(lines) if line.lower().startswith(b"via:")]
    found = re.search(rb"branch=([^;\s,]+)", lines[index])
    assert found is not None
    lines[index] = b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (port, found.group(1))
    return b"\r\n".join(lines)


@pytest.mark.parametrize("name", sorted(REFUSED))
async def test_rfc4475_request_the_ua_refuses_gets_its_answer(
    routed: PalaverServer, probe: _UdpProbe, name: str
) -> None:
    mark = len(routed.stderr_text())
    request = _via_to_probe(load_torture("application", name), probe.port)
    call_id = re.search(rb"Call-ID: ([^\r\n]+)", request).group(1).decode()  # type: ignore[union-attr]
    probe.send(request)
    status, data = await asyncio.to_thread(probe.final_answer, call_id)
    assert status == REFUSED[name], data[:300]
    if request.startswith(b"INVITE"):
        probe.send(probe.ack(request, data))
    probe.send(probe.options(f"after-{name}"))
    while (answer := await asyncio.to_thread(probe.answer))[1] == call_id:
        assert answer[0] == REFUSED[name]  # a retransmission sent before the ACK arrived
    assert answer[:2] == (200, f"after-{name}")
    assert " incoming to " not in routed.stderr_text()[mark:]  # none became a call


async def test_random_bytes_get_a_4xx_or_silence(routed: PalaverServer, probe: _UdpProbe) -> None:
    rng = random.Random(4475)
    good = probe.options("mutated")
    blobs = [rng.randbytes(rng.randrange(1, 1400)) for _ in range(30)]
    for _ in range(30):  # real requests with a few bytes changed: some answerable, most not
        mutated = bytearray(good)
        for _ in range(rng.randrange(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        blobs.append(bytes(mutated))
    blobs += [b"\x00" * 64, b"SIP/2.0 200 OK\r\n\r\n", b"INVITE\r\n\r\n", b"\xff\xfe" * 300]
    for blob in blobs:
        probe.send(blob)
    probe.send(probe.options("survivor"))
    answers = []
    for _ in range(len(blobs) + 1):  # bounded: at most one answer per datagram
        answer = await asyncio.to_thread(probe.answer)
        answers.append(answer)
        if answer[1] == "survivor":
            break
    assert answers[-1][:2] == (200, "survivor")
    # A mutated OPTIONS may still be well formed (200); everything else got an error or nothing.
    mutated_ids = {
        m.group(1).decode("latin-1") for b in blobs if (m := re.search(rb"Call-ID: ?([^\r\n]*)", b))
    }
    odd = [(status, call_id) for status, call_id, _ in answers[:-1] if not 400 <= status < 600]
    assert all(status == 200 and call_id in mutated_ids for status, call_id in odd), odd
    assert routed.is_running()


BAD_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio sixty RTP/AVP 0\r\n"
)
G729_ONLY = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
)


@pytest.mark.parametrize(
    ("sdp", "expected"), [(BAD_SDP, 400), (G729_ONLY, 488)], ids=["malformed", "no-codec"]
)
async def test_an_invite_with_an_unusable_sdp_is_refused_and_acked(
    routed: PalaverServer, probe: _UdpProbe, sdp: bytes, expected: int
) -> None:
    mark = len(routed.stderr_text())
    call_id, branch, tag = (
        f"sdp-{secrets.token_hex(4)}",
        f"z9hG4bK{secrets.token_hex(8)}",
        secrets.token_hex(4),
    )
    invite = probe.invite(call_id, sdp, branch, tag)
    probe.send(invite)
    status, data = await asyncio.to_thread(probe.final_answer, call_id)
    assert status == expected, data[:300]
    probe.send(probe.ack(invite, data))
    probe.send(probe.options("after-sdp"))
    # The ACK stopped the retransmissions of the final answer; the next answer is the OPTIONS'.
    while (answer := await asyncio.to_thread(probe.answer))[1] == call_id:
        assert answer[0] == expected
    assert answer[:2] == (200, "after-sdp")
    assert "incoming to 'probe'" not in routed.stderr_text()[mark:]  # never became a call
    assert routed.is_running()


async def test_after_the_garbage_a_normal_call_still_works(
    routed: PalaverServer, tmp_path: Path, silence_pcap: Path
) -> None:
    result = await run_sipp_async(
        SCENARIOS / "uac_speech.xml",
        f"127.0.0.1:{routed.sip_port}",
        workdir=tmp_path / "sipp",
        pcaps={"speech.pcap": silence_pcap},
        service="4711",
        duration_ms=1500,
        timeout_s=CALL_TIMEOUT,
    )
    assert result.ok, result.describe()
    assert [m.status for m in _received(result) if m.status and m.status >= 200] == [200, 200]
    assert routed.is_running()


# ----------------------------------------------------------------------------- digest auth


async def test_digest_credentials_are_challenged_then_the_call_is_answered(
    guarded: PalaverServer, tmp_path: Path
) -> None:
    mark = len(guarded.stderr_text())
    result = await run_sipp_async(
        SCENARIOS / "uac_auth.xml",
        f"127.0.0.1:{guarded.sip_port}",
        workdir=tmp_path / "sipp",
        service="4711",
        duration_ms=1000,
        timeout_s=CALL_TIMEOUT,
        # SIPp's digest uri is "sip:<remote_ip>:<port>" unless told; Palaver checks that it names
        # the Request-URI (RFC 2617 3.2.2.5), as a real phone's does.
        extra_args=["-auth_uri", f"4711@127.0.0.1:{guarded.sip_port}"],
    )
    assert result.ok, result.describe()
    (challenge,) = _received(result, status=401)
    (www,) = challenge.header("WWW-Authenticate")
    assert www.startswith("Digest ") and "nonce=" in www
    first, second = _sent(result, method="INVITE")
    assert first.header("Authorization") == []
    (authorization,) = second.header("Authorization")
    assert 'username="alice"' in authorization
    assert [m.status for m in _received(result) if m.status and m.status >= 200] == [401, 200, 200]
    log = guarded.stderr_text()[mark:]
    assert log.count(" incoming to '4711'") == 1  # only the authorised INVITE became a call
    assert "ended: bye" in log


async def test_wrong_digest_credentials_get_no_call(guarded: PalaverServer, tmp_path: Path) -> None:
    mark = len(guarded.stderr_text())
    result = await run_sipp_async(
        SCENARIOS / "uac_auth_refused.xml",
        f"127.0.0.1:{guarded.sip_port}",
        workdir=tmp_path / "sipp",
        service="4711",
        timeout_s=CALL_TIMEOUT,
        extra_args=["-auth_uri", f"4711@127.0.0.1:{guarded.sip_port}"],
    )
    assert result.ok, result.describe()
    finals = [m.status for m in _received(result) if m.status and m.status >= 200]
    assert finals[0] == 401 and finals[1] in (401, 403) and len(finals) == 2, finals
    (_, second) = _sent(result, method="INVITE")
    assert 'username="alice"' in second.header("Authorization")[0]
    assert "incoming to" not in guarded.stderr_text()[mark:]


async def test_with_every_rtp_port_taken_a_call_is_declined_503(scripted_llm: Any) -> None:
    """No media port free: the caller hears 503 at once (not a call left ringing), and the server
    goes on."""
    require_binary("sipp")
    with contextlib.ExitStack() as held:
        port = _hold_port_pair(held)
        settings = {"PALAVER_RTP_PORT_MIN": str(port), "PALAVER_RTP_PORT_MAX": str(port + 1)}
        with scripted_server(scripted_llm, api_key=API_KEY, **settings) as server:
            udp = _UdpProbe(server)
            held.callback(udp.close)
            call_id = f"busy-{secrets.token_hex(4)}"
            branch, tag = f"z9hG4bK{secrets.token_hex(8)}", secrets.token_hex(4)
            invite = udp.invite(call_id, G711_OFFER, branch, tag)
            udp.send(invite)
            status, data = await asyncio.to_thread(udp.final_answer, call_id)
            assert status == 503, data[:300]
            udp.send(udp.ack(invite, data))
            assert "no RTP port free" in server.stderr_text()
            assert server.is_running()


def _hold_port_pair(stack: contextlib.ExitStack) -> int:
    """Bind an even UDP port and the next one on 127.0.0.1 (held until ``stack`` closes)."""
    for _ in range(100):
        with contextlib.ExitStack() as attempt:
            first = attempt.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            if port % 2 or port >= 65535:
                continue
            second = attempt.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            stack.push(attempt.pop_all())
            return port
    raise RuntimeError("no free even/odd UDP port pair on 127.0.0.1")


G711_OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)
