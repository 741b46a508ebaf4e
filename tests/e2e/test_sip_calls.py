"""Phone calls from SIPp, the way OpenAI's SIP calls go: webhook, REST accept, sideband, RTP.

SIPp dials Palaver over UDP and over TCP and plays test speech (flite, made at test time) then
an RFC 4733 digit, then hangs up. A webhook receiver verifies the signature with the stock
``openai`` SDK and accepts through the SDK's REST call; the test watches the call on a sideband
WebSocket (``?call_id=``) with the SDK, and a packet sniffer on ``lo`` sees the agent's reply as
RTP going to SIPp.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import websockets.exceptions

from tests.e2e.realtime_client import of_type
from tests.support.call_watch import sideband, watch_call
from tests.support.peers import require_packet_capture
from tests.support.rtp_sniffer import RtpSniffer
from tests.support.server import PalaverServer
from tests.support.sip_peers import (
    SCENARIOS,
    SippProcess,
    require_binary,
    speech_wav,
    wav_to_rtp_pcap,
    write_wav,
)
from tests.support.sip_server import PHONE_TURNS, accept_with, hooked_server
from tests.support.speech import flite_speech, silence, to_rate, word_error_rate
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

API_KEY = "sk-palaver-sip-test"
SECRET = "whsec_" + base64.b64encode(b"palaver-sip-test-secret-32bytes!").decode()
SPOKEN = "i would like to book a table for two people tonight"
ANSWER = "Certainly. I have booked a table for two people tonight."
INSTRUCTIONS = "You take restaurant bookings on the phone."
#: PCMA silence (the encoding of 0 and its neighbours).
PCMA_QUIET = frozenset({0xD5, 0x55, 0xD4, 0x54})


@pytest.fixture(scope="module")
def sip_server(scripted_llm: Any) -> Iterator[tuple[PalaverServer, WebhookReceiver]]:
    require_binary("sipp")
    with hooked_server(scripted_llm, api_key=API_KEY, secret=SECRET) as (server, hook):
        hook.decide = accept_with(server, API_KEY, instructions=INSTRUCTIONS, audio=PHONE_TURNS)
        yield server, hook


def _caller(
    server: PalaverServer,
    tmp_path: Path,
    scenario: str,
    *,
    pause_s: float | None = None,
    transport: str = "u1",
) -> SippProcess:
    """SIPp calling ``server`` with ``tmp_path/speech.pcap`` as its voice; ``uac_speech.xml``
    then waits ``pause_s`` (the reply), presses "1" and hangs up; ``uac_hangup.xml`` waits for
    Palaver's BYE."""
    return SippProcess(
        SCENARIOS / scenario,
        f"127.0.0.1:{server.sip_port}",
        transport=transport,  # type: ignore[arg-type]
        pcaps={"speech.pcap": tmp_path / "speech.pcap"},
        dtmf="1",
        workdir=tmp_path / "sipp",
        duration_ms=None if pause_s is None else int(pause_s * 1000),
        timeout_s=60,
    )


def _reply_packets(packets: list[tuple[float, int, int, bytes]]) -> list[tuple[float, int, int, bytes]]:
    """Palaver's RTP audio packets that carry sound (PCMA, payload type 8), in order sent."""
    out = []
    for when, src, dst, rtp in packets:
        if len(rtp) < 12 or rtp[0] >> 6 != 2 or rtp[1] & 0x7F != 8:
            continue
        payload = rtp[12:]
        if sum(1 for b in payload if b not in PCMA_QUIET) > len(payload) // 4:
            out.append((when, src, dst, rtp))
    return out


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
async def test_sipp_call_is_announced_accepted_heard_answered_and_hung_up(
    sip_server: tuple[PalaverServer, WebhookReceiver], llm: Any, tmp_path: Path, transport: str
) -> None:
    server, hook = sip_server
    llm.push_text(ANSWER)
    wav = speech_wav(tmp_path / "speech.wav", SPOKEN, leading_silence_s=1.0, trailing_silence_s=1.0)
    seconds = wav_to_rtp_pcap(wav, tmp_path / "speech.pcap")
    sipp = _caller(server, tmp_path, "uac_speech.xml", pause_s=seconds + 8, transport=transport)
    require_packet_capture()
    with RtpSniffer(sipp.media_port) as sniffer, sipp:
        incoming = await asyncio.to_thread(hook.wait_event, 20)
        call_id = incoming.data.call_id
        events = (await watch_call(server, call_id, api_key=API_KEY, timeout=60)).events
        result = await sipp.wait_async()
    assert result.ok, result.describe()

    # The webhook: signed (the SDK verified it), OpenAI's payload, the INVITE's headers.
    assert hook.rejected == [] and hook.decision_errors == []
    assert incoming.type == "realtime.call.incoming" and call_id.startswith("rtc_")
    names = {h.name for h in incoming.data.sip_headers}
    assert {"From", "To", "Call-ID"} <= names

    # The sideband saw the accepted session, the caller's words, the key press, the reply.
    assert events and events[0].type == "session.created"
    assert events[0].session.instructions == INSTRUCTIONS
    assert events[0].session.audio.input.format.type == "audio/pcma"
    completed = of_type(events, "conversation.item.input_audio_transcription.completed")
    assert completed, [e.type for e in events]
    assert word_error_rate(SPOKEN, completed[0].transcript) <= 0.5, completed[0].transcript
    assert [e.event for e in of_type(events, "input_audio_buffer.dtmf_event_received")] == ["1"]
    done = [e for e in of_type(events, "response.done") if e.response.status == "completed"]
    assert done, [e.type for e in events]
    response_id = done[0].response.id
    assert done[0].response.output[0].content[0].transcript == ANSWER
    assert [e.response_id for e in of_type(events, "output_audio_buffer.started")][:1] == [response_id]
    trace = [
        (e.type, getattr(e, "response_id", None) or getattr(getattr(e, "response", None), "id", None))
        for e in events
        if not e.type.endswith(".delta")
    ]
    assert response_id in [e.response_id for e in of_type(events, "output_audio_buffer.stopped")], trace
    assert not of_type(events, "response.output_audio.delta")  # the audio went down the line
    assert not of_type(events, "error"), of_type(events, "error")

    # The reply reached SIPp as RTP, one 20 ms packet after another, not in a burst.
    reply = _reply_packets(sniffer.packets())
    assert len(reply) >= 50, f"{len(reply)} reply packets"  # at least a second of speech
    sequence = [int.from_bytes(rtp[2:4], "big") for _, _, _, rtp in reply]
    stamps = [int.from_bytes(rtp[4:8], "big") for _, _, _, rtp in reply]
    assert all(len(rtp) == 12 + 160 for _, _, _, rtp in reply)  # 20 ms of 8 kHz G.711 each
    assert all((b - a) % 65536 >= 1 for a, b in itertools.pairwise(sequence))
    steps = zip(itertools.pairwise(stamps), itertools.pairwise(sequence), strict=True)
    assert all((b - a) % 2**32 == 160 * ((sb - sa) % 65536) for (a, b), (sa, sb) in steps)
    sent = [when for when, _, _, _ in reply]
    span = sent[-1] - sent[0]
    slots = (sequence[-1] - sequence[0]) % 65536
    assert span >= 0.9 * slots * 0.020, f"{slots} packets in {span * 1000:.0f} ms: sent faster than real time"

    # BYE ended the call cleanly.
    assert "ended: bye" in server.stderr_text()


LONG_ANSWER = (
    "Let me tell you about our menu. We have fresh pasta every day, grilled fish from the market, "
    "three kinds of risotto, a vegetable curry, and a chocolate cake that people come back for."
)


async def test_a_caller_talking_over_the_agent_stops_its_audio_on_the_line(
    sip_server: tuple[PalaverServer, WebhookReceiver], llm: Any, tmp_path: Path
) -> None:
    """Barge-in on a phone line: the reply stops on the wire where the item is truncated."""
    server, hook = sip_server
    while not hook.events.empty():
        hook.events.get_nowait()
    llm.push_text(LONG_ANSWER)
    llm.push_text("Sure.")
    pcm = (
        silence(500, 8000)
        + to_rate(flite_speech("what is on the menu today"), 16000, 8000)
        + silence(3500, 8000)  # the agent starts its long answer here
        + to_rate(flite_speech("stop please i have heard enough thank you"), 16000, 8000)
        + silence(1000, 8000)
    )
    wav = write_wav(tmp_path / "caller.wav", pcm)
    seconds = wav_to_rtp_pcap(wav, tmp_path / "speech.pcap")
    sipp = _caller(server, tmp_path, "uac_speech.xml", pause_s=seconds + 3)
    require_packet_capture()
    with RtpSniffer(sipp.media_port) as sniffer, sipp:
        call_id = (await asyncio.to_thread(hook.wait_event, 20)).data.call_id
        events = (await watch_call(server, call_id, api_key=API_KEY, timeout=60)).events
        result = await sipp.wait_async()
    assert result.ok, result.describe()

    first = of_type(events, "response.created")[0].response.id
    assert first in [e.response_id for e in of_type(events, "output_audio_buffer.cleared")]
    truncated = of_type(events, "conversation.item.truncated")
    assert len(truncated) == 1, [e.type for e in events]
    heard_ms = truncated[0].audio_end_ms
    assert 300 <= heard_ms <= 6000, heard_ms  # cut well before the ~10 s answer ended
    # On the wire: Palaver's loud packets of the first answer end where the item was cut.
    reply = _reply_packets(sniffer.packets())
    cut = [n for n, (a, b) in enumerate(itertools.pairwise(reply)) if b[0] - a[0] > 0.5]
    sent_first = (cut[0] + 1) if cut else len(reply)
    assert abs(sent_first * 20 - heard_ms) <= 400, (sent_first * 20, heard_ms)


BOOKING_TOOL = {
    "type": "function",
    "name": "find_booking",
    "description": "Look up a booking by the caller's surname.",
    "parameters": {"type": "object", "properties": {"surname": {"type": "string"}}, "required": ["surname"]},
}
FOUND = "I found your booking for eight o'clock."


async def test_the_sideband_drives_the_call_with_a_tool(
    sip_server: tuple[PalaverServer, WebhookReceiver], llm: Any, tmp_path: Path
) -> None:
    """The backend on the sideband adds a tool, runs it when the agent calls it, and the agent
    speaks the result down the line: session.update, function_call_output and response.create."""
    server, hook = sip_server
    while not hook.events.empty():
        hook.events.get_nowait()
    llm.push_tool_call("find_booking", {"surname": "smith"})
    llm.push_text(FOUND)
    wav = speech_wav(tmp_path / "caller.wav", "my name is smith", leading_silence_s=2.0)
    seconds = wav_to_rtp_pcap(wav, tmp_path / "speech.pcap")
    sipp = _caller(server, tmp_path, "uac_speech.xml", pause_s=seconds + 7)
    events: list[Any] = []
    with sipp:
        call_id = (await asyncio.to_thread(hook.wait_event, 20)).data.call_id
        async with asyncio.timeout(60), sideband(server, call_id, api_key=API_KEY) as conn:
            await conn.session.update(session={"type": "realtime", "tools": [BOOKING_TOOL]})
            with contextlib.suppress(websockets.exceptions.ConnectionClosed):  # closed when the call ends
                async for event in conn:
                    events.append(event)
                    if event.type == "response.function_call_arguments.done":
                        output = {"type": "function_call_output", "call_id": event.call_id}
                        await conn.conversation.item.create(item={**output, "output": '{"time": "20:00"}'})
                        await conn.response.create()
        result = await sipp.wait_async()
    assert result.ok, result.describe()

    assert of_type(events, "session.updated")[0].session.tools[0].name == "find_booking"
    (arguments,) = of_type(events, "response.function_call_arguments.done")
    assert arguments.name == "find_booking" and '"smith"' in arguments.arguments
    spoken = [e for e in of_type(events, "response.done") if e.response.output]
    final = spoken[-1].response
    assert final.output[0].content[0].transcript == FOUND
    assert final.id in [e.response_id for e in of_type(events, "output_audio_buffer.started")]
    tool_request = llm.requests[-1]["messages"]
    assert any(m["role"] == "tool" and "20:00" in str(m["content"]) for m in tool_request)


async def test_keys_pressed_through_rest_reach_the_caller_as_rfc4733(
    sip_server: tuple[PalaverServer, WebhookReceiver], tmp_path: Path
) -> None:
    """``POST /v1/realtime/calls/{id}/dtmf`` (Palaver's own) presses keys on the line; then hangup."""
    server, hook = sip_server
    while not hook.events.empty():  # events of earlier tests' calls
        hook.events.get_nowait()
    wav = speech_wav(tmp_path / "hello.wav", "hello", leading_silence_s=0.2)
    wav_to_rtp_pcap(wav, tmp_path / "speech.pcap")
    sipp = _caller(server, tmp_path, "uac_hangup.xml")
    require_packet_capture()
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=server.http_url + "/v1")
    async with client:
        with RtpSniffer(sipp.media_port) as sniffer, sipp:
            result = await _press_keys_then_hang_up(server, hook, client, sipp)
    assert result.ok, result.describe()
    ends = []
    for _, _, _, rtp in sniffer.packets():
        if len(rtp) >= 16 and rtp[1] & 0x7F == 101 and rtp[13] & 0x80:  # telephone-event, end bit
            ends.append((int.from_bytes(rtp[4:8], "big"), rtp[12]))
    assert [event for _, event in dict.fromkeys(ends)] == [5, 11]  # "5" then "#", one press each


async def _press_keys_then_hang_up(
    server: PalaverServer, hook: WebhookReceiver, client: openai.AsyncOpenAI, sipp: SippProcess
) -> Any:
    call_id = (await asyncio.to_thread(hook.wait_event, 20)).data.call_id
    for _ in range(100):  # until the webhook receiver's accept went through
        response = await _post(server, f"/v1/realtime/calls/{call_id}/dtmf", {"digits": "5#"})
        if response.status_code != 409:
            break
        await asyncio.sleep(0.1)
    assert response.status_code == 200, response.text
    bad = await _post(server, f"/v1/realtime/calls/{call_id}/dtmf", {"digits": "5x"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "digits"
    await asyncio.sleep(1.0)  # two presses of 100 ms and their pauses go out on the line
    await client.realtime.calls.hangup(call_id)
    return await sipp.wait_async()


async def _post(server: PalaverServer, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        return await http.post(path, json=body, headers={"Authorization": f"Bearer {API_KEY}"})


async def test_a_caller_that_goes_silent_is_hung_up(scripted_llm: Any, tmp_path: Path) -> None:
    """No RTP for PALAVER_RTP_TIMEOUT_SECONDS: Palaver sends BYE (the scenario waits for it)."""
    require_binary("sipp")
    wav = speech_wav(tmp_path / "hello.wav", "hello", leading_silence_s=0.2)
    wav_to_rtp_pcap(wav, tmp_path / "speech.pcap")
    server = PalaverServer({"PALAVER_RTP_TIMEOUT_SECONDS": "1.5", "PALAVER_STT": "null"})
    server.start()
    try:
        sipp = _caller(server, tmp_path, "uac_hangup.xml")
        with sipp:
            result = await sipp.wait_async()
        assert result.ok, result.describe()
        assert "no RTP for 1.5s, hanging up" in server.stderr_text()
    finally:
        server.stop()
        server.cleanup()


def test_a_busy_sip_port_stops_startup_with_a_clear_message() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        server = PalaverServer({"PALAVER_SIP_PORT": str(port), "PALAVER_STT": "null"})
        try:
            with pytest.raises(RuntimeError) as failed:
                server.start(timeout=30)
        finally:
            server.stop()
            server.cleanup()
    assert f"cannot take SIP calls on 127.0.0.1:{port}" in str(failed.value)
    assert "PALAVER_SIP_ENABLED=false" in str(failed.value)
