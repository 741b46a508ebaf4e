"""The SIP peer harness checked against real peers without Palaver: SIPp against SIPp (each of
Palaver's scenarios with its companion), through kamailio, and baresip and linphonec calling SIPp.
"""

from __future__ import annotations

import itertools
import math
import struct
import time
from pathlib import Path

import pytest

from tests.support.sip_peers import (
    SCENARIOS,
    BaresipCaller,
    Kamailio,
    Linphonec,
    SippProcess,
    read_wav,
    run_sipp,
    wav_to_rtp_pcap,
    write_wav,
)


def tone_wav(path: Path, seconds: float) -> Path:
    n = int(8000 * seconds)
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(n))
    return write_wav(path, pcm)


def test_wav_to_rtp_pcap_writes_ethernet_ipv4_udp_rtp_at_20_ms(tmp_path: Path) -> None:
    wav = tone_wav(tmp_path / "tone.wav", 0.5)
    seconds = wav_to_rtp_pcap(wav, tmp_path / "tone.pcap", encoding="PCMU")
    assert seconds == pytest.approx(0.5)
    data = (tmp_path / "tone.pcap").read_bytes()
    magic, major, minor, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    offset, times, seqs = 24, [], []
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        assert incl == orig and frame[12:14] == b"\x08\x00"
        ip = frame[14:34]
        assert ip[9] == 17 and struct.unpack("!H", ip[2:4])[0] == len(frame) - 14
        udp = frame[34:42]
        assert struct.unpack("!H", udp[4:6])[0] == len(frame) - 34
        rtp = frame[42:]
        assert rtp[0] == 0x80 and rtp[1] & 0x7F == 0 and len(rtp) == 12 + 160
        seqs.append(struct.unpack("!H", rtp[2:4])[0])
        times.append(sec * 1_000_000 + usec)
    assert seqs == list(range(25))
    assert {b - a for a, b in itertools.pairwise(times)} == {20_000}


def test_speech_pcap_needs_8_khz(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "16k.wav", b"\0\0" * 1600, rate=16000)
    with pytest.raises(ValueError, match="8000 Hz"):
        wav_to_rtp_pcap(wav, tmp_path / "x.pcap")
    assert read_wav(wav) == (b"\0\0" * 1600, 16000)


@pytest.fixture
def speech_pcap(tmp_path: Path) -> Path:
    wav_to_rtp_pcap(tone_wav(tmp_path / "tone.wav", 1.0), tmp_path / "speech.pcap")
    return tmp_path / "speech.pcap"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("uac", "uas"),
    [
        ("uac_speech.xml", "uas_answer.xml"),
        ("uac_reject.xml", "uas_reject.xml"),
        ("uac_hangup.xml", "uas_hangup.xml"),
        ("uac_refer.xml", "uas_refer.xml"),
    ],
)
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_palaver_scenarios_against_their_companions(
    uac: str, uas: str, transport: str, tmp_path: Path, speech_pcap: Path
) -> None:
    server = SippProcess(SCENARIOS / uas, workdir=tmp_path / "uas", transport=transport, duration_ms=500)
    with server:
        time.sleep(0.2)  # SIPp binds within milliseconds; a UDP INVITE before that is retransmitted anyway
        result = run_sipp(
            SCENARIOS / uac,
            server.address,
            workdir=tmp_path / "uac",
            transport=transport,  # type: ignore[arg-type]
            pcaps={"speech.pcap": speech_pcap},
            duration_ms=1000,
            timeout_s=20,
        )
        assert result.ok, result.describe()
        served = server.wait(15)
        assert served.ok, served.describe()
    if uac == "uac_refer.xml":
        assert "refer-to: <sip:transfer@127.0.0.1>" in result.trace("logs").replace(":  ", ": ")


@pytest.mark.e2e
def test_sipp_through_kamailio_with_record_route(tmp_path: Path, speech_pcap: Path) -> None:
    server = SippProcess(SCENARIOS / "uas_answer.xml", workdir=tmp_path / "uas")
    with server, Kamailio(tmp_path / "kamailio", uas=("127.0.0.1", server.local_port)) as proxy:
        result = run_sipp(
            SCENARIOS / "uac_speech.xml",
            f"127.0.0.1:{proxy.port}",
            workdir=tmp_path / "uac",
            transport="t1",
            pcaps={"speech.pcap": speech_pcap},
            duration_ms=500,
            timeout_s=20,
        )
        assert result.ok, result.describe()
        assert server.wait(15).ok
        routed = [line.split()[0] for line in proxy.routed()]
    # The ACK and BYE came through the proxy: the Record-Route reached the caller in the 200.
    assert routed == ["INVITE", "ACK", "BYE"], proxy.log()[-3000:]


@pytest.mark.e2e
def test_baresip_calls_sipp_and_records_both_directions(tmp_path: Path) -> None:
    wav = tone_wav(tmp_path / "tone.wav", 1.5)
    with SippProcess(SCENARIOS / "uas_answer.xml", workdir=tmp_path / "uas") as server:
        time.sleep(0.2)
        with BaresipCaller(tmp_path / "baresip", wav=wav) as caller:
            outcome = caller.dial(f"sip:agent@{server.address}", seconds=10)
        served = server.wait(15)
    assert outcome.established(), outcome.log[-3000:]
    assert served.ok, served.describe()
    assert outcome.encoded is not None and outcome.decoded is not None
    sent, rate = read_wav(outcome.encoded)
    assert rate == 8000 and len(sent) >= 2 * 8000  # at least the 1.5 s tone was sent


@pytest.mark.e2e
def test_linphonec_calls_sipp(tmp_path: Path) -> None:
    wav = tone_wav(tmp_path / "tone.wav", 2.0)
    with SippProcess(SCENARIOS / "uas_answer.xml", workdir=tmp_path / "uas") as server:
        time.sleep(0.2)
        with Linphonec(tmp_path / "linphone") as phone:
            outcome = phone.call(
                f"sip:agent@{server.address}", play=wav, record=tmp_path / "heard.wav", seconds=2
            )
        served = server.wait(15)
    assert "connected" in outcome.log, outcome.log[-3000:]
    assert served.ok, served.describe()
    assert outcome.recording is not None
