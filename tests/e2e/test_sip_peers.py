"""Real third-party SIP peers against the real server: kamailio as a Record-Routing proxy in front
of Palaver, and linphonec (liblinphone) as a softphone.

One server for the module; a webhook receiver accepts every call (with transcription, so the
caller's words show on the sideband), as an application using OpenAI's SIP calls would.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.call_watch import distinct, sipp_messages, watch_call
from tests.support.server import PalaverServer
from tests.support.sip_peers import (
    SCENARIOS,
    Kamailio,
    Linphonec,
    SippProcess,
    read_wav,
    require_binary,
    speech_wav,
    wav_to_rtp_pcap,
)
from tests.support.sip_server import PHONE_TURNS, accept_with, hooked_server
from tests.support.speech import word_error_rate
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

API_KEY = "sk-palaver-sip-peers"
SECRET = "whsec_" + base64.b64encode(b"palaver-sip-peers-secret-32byte!").decode()
INSTRUCTIONS = "You answer the phone for a dentist."
SPOKEN = "i would like to book an appointment for tomorrow morning"
ANSWER = "Certainly. I have booked you in for tomorrow morning at nine."
CALL_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def peers_server(scripted_llm: Any) -> Iterator[tuple[PalaverServer, WebhookReceiver]]:
    with hooked_server(scripted_llm, api_key=API_KEY, secret=SECRET) as (server, hook):
        hook.decide = accept_with(server, API_KEY, instructions=INSTRUCTIONS, audio=PHONE_TURNS)
        yield server, hook


async def _incoming(hook: WebhookReceiver, user: str, timeout: float = 30.0) -> Any:
    """The webhook event of the call to ``user`` (another test's late event is skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            event = await asyncio.to_thread(hook.wait_event, timeout)
            to = [h.value for h in event.data.sip_headers if h.name == "To"]
            if to and f"sip:{user}@" in to[0]:
                return event


def _transcripts(events: list[Any]) -> list[str]:
    return [e.transcript for e in events if e.type == "conversation.item.input_audio_transcription.completed"]


# ----------------------------------------------------------------------------- kamailio


@pytest.mark.parametrize(("transport", "leg"), [("u1", "udp"), ("t1", "tcp")], ids=["udp", "tcp"])
async def test_a_call_through_kamailio_is_answered_heard_and_hung_up_via_the_route_set(
    peers_server: tuple[PalaverServer, WebhookReceiver], llm: Any, tmp_path: Path, transport: str, leg: str
) -> None:
    require_binary("sipp")
    server, hook = peers_server
    llm.push_text(ANSWER)
    wav = speech_wav(tmp_path / "speech.wav", SPOKEN, leading_silence_s=0.5, trailing_silence_s=0.5)
    seconds = wav_to_rtp_pcap(wav, tmp_path / "speech.pcap")
    user = f"proxied-{leg}"
    with Kamailio(tmp_path / "kamailio", uas=("127.0.0.1", server.sip_port), uas_transport=leg) as proxy:  # type: ignore[arg-type]
        sipp = SippProcess(
            SCENARIOS / "uac_speech.xml",
            f"127.0.0.1:{proxy.port}",
            transport=transport,
            workdir=tmp_path / "sipp",
            pcaps={"speech.pcap": tmp_path / "speech.pcap"},
            dtmf="5",
            service=user,
            duration_ms=int((seconds + 3) * 1000),
            timeout_s=CALL_TIMEOUT,
        )
        with sipp:
            incoming = await _incoming(hook, user)
            watched = await watch_call(server, incoming.data.call_id, api_key=API_KEY, timeout=CALL_TIMEOUT)
            result = await sipp.wait_async()
        routed = proxy.routed()
    assert result.ok, result.describe()

    # kamailio relayed the INVITE, then the ACK and the BYE that followed the route set.
    methods = [line.split(" ", 1)[0] for line in routed]
    assert methods[:1] == ["INVITE"] and "ACK" in methods and "BYE" in methods, routed

    # Palaver's 200 carried kamailio's Record-Route back (RFC 3261 12.1.1), so SIPp's ACK and
    # BYE were sent with a Route through the proxy.
    messages = distinct(sipp_messages(result))
    (ok,) = [m for m in messages if m.received and m.status == 200 and "INVITE" in m.header("CSeq")[0]]
    record_route = ", ".join(ok.header("Record-Route"))
    assert f"127.0.0.1:{proxy.port}" in record_route, ok.text
    for method in ("ACK", "BYE"):
        (sent,) = [m for m in messages if not m.received and m.method == method]
        assert f"127.0.0.1:{proxy.port}" in ", ".join(sent.header("Route")), sent.text

    # Media flowed: the sideband heard the words and the key; BYE ended the call and the sideband.
    assert watched.closed_cleanly, watched.error
    assert watched.events[0].type == "session.created"
    transcripts = _transcripts(watched.events)
    assert transcripts and word_error_rate(SPOKEN, transcripts[0]) <= 0.5, transcripts
    assert [e.event for e in watched.of_type("input_audio_buffer.dtmf_event_received")] == ["5"]
    assert f"call {incoming.data.call_id} ended: bye" in server.stderr_text()


# ---------------------------------------------------------------------------- linphonec


def _loud_seconds(pcm: bytes, rate: int, threshold: float = 300.0) -> float:
    """Seconds of 20 ms frames whose RMS exceeds ``threshold`` (16-bit): sound, not silence."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frame = rate // 50
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    if not len(frames):
        return 0.0
    rms = np.sqrt((frames**2).mean(axis=1))
    return float((rms > threshold).sum()) * 0.020


async def test_linphonec_talks_to_palaver_and_records_the_reply(
    peers_server: tuple[PalaverServer, WebhookReceiver], llm: Any, tmp_path: Path
) -> None:
    server, hook = peers_server
    llm.push_text(ANSWER)
    wav = speech_wav(tmp_path / "speech.wav", SPOKEN, leading_silence_s=0.5, trailing_silence_s=12.0)
    recording = tmp_path / "heard.wav"
    with Linphonec(tmp_path / "linphone") as phone:
        call = asyncio.create_task(
            phone.call_async(
                f"sip:dentist@127.0.0.1:{server.sip_port}", play=wav, record=recording, seconds=12
            )
        )
        try:
            incoming = await _incoming(hook, "dentist")
            watched = await watch_call(server, incoming.data.call_id, api_key=API_KEY, timeout=CALL_TIMEOUT)
        finally:
            outcome = await call
    assert watched.closed_cleanly, watched.error  # linphonec hung up: BYE ended the call

    # Palaver heard the caller and answered: transcript, then the agent's reply went down the line.
    transcripts = _transcripts(watched.events)
    assert transcripts and word_error_rate(SPOKEN, transcripts[0]) <= 0.5, transcripts
    done = [e for e in watched.of_type("response.done") if e.response.status == "completed"]
    assert done and done[0].response.output[0].content[0].transcript == ANSWER, [
        e.type for e in watched.events
    ]
    assert watched.of_type("output_audio_buffer.started"), [e.type for e in watched.events]
    assert watched.events[0].session.audio.input.format.type in ("audio/pcmu", "audio/pcma")

    # linphone recorded Palaver's reply: at least a second of sound, not silence.
    assert outcome.recording is not None, outcome.log[-3000:]
    pcm, rate = read_wav(outcome.recording)
    assert _loud_seconds(pcm, rate) >= 1.0, (
        f"{_loud_seconds(pcm, rate):.2f} s of sound in {len(pcm) // 2 / rate:.1f} s"
    )
    assert f"call {incoming.data.call_id} ended: bye" in server.stderr_text()
