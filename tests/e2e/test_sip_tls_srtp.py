"""A softphone over SIP/TLS with SRTP required: baresip calls, speaks, and records the agent's reply.

No webhook: the built-in agent answers at once (the README's first thing to try). baresip plays
a flite WAV as its microphone and records what it receives; the recording, decrypted by baresip
from our SRTP, must hold the agent's speech: the words the brain was scripted to say, heard by
the embedded recogniser.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.server import PalaverServer
from tests.support.sip_peers import BaresipCaller, make_tls_cert, read_wav, require_binary, speech_wav
from tests.support.sip_server import scripted_server
from tests.support.speech import word_error_rate

pytestmark = pytest.mark.e2e

SPOKEN = "hello can you hear me"
ANSWER = "Yes I can hear you very well."


@pytest.fixture(scope="module")
def tls_server(scripted_llm: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PalaverServer]:
    require_binary("baresip")
    tls = make_tls_cert(tmp_path_factory.mktemp("tls"))
    with scripted_server(
        scripted_llm, api_key=None, PALAVER_SIP_TLS_CERT=str(tls.cert), PALAVER_SIP_TLS_KEY=str(tls.key)
    ) as server:
        yield server


def _recognise(path: Path) -> str:
    """The embedded recogniser's reading of a recording (8 kHz 16-bit WAV)."""
    from palaver.backends.stt.pocketsphinx import PocketsphinxSTT
    from tests.support.speech import to_rate

    pcm, rate = read_wav(path)
    stt = PocketsphinxSTT()
    try:
        stream = stt.open_stream(narrowband=True)
        stream.push(to_rate(pcm, rate, stt.sample_rate))
        return stream.finish().text
    finally:
        stt.close()


def test_baresip_over_tls_with_srtp_hears_the_agent(
    tls_server: PalaverServer, llm: Any, tmp_path: Path
) -> None:
    llm.push_text(ANSWER)
    wav = speech_wav(tmp_path / "caller.wav", SPOKEN, leading_silence_s=0.5, trailing_silence_s=8.0)
    tls_port = tls_server.sip_port + 1
    with BaresipCaller(tmp_path / "baresip", wav=wav, srtp=True, tls=True) as caller:
        outcome = caller.dial(f"sip:agent@127.0.0.1:{tls_port};transport=tls", seconds=25)
    assert outcome.established(), outcome.log[-3000:]
    log = tls_server.stderr_text()
    assert "answered: PCMU/SRTP" in log or "answered: PCMA/SRTP" in log, log[-3000:]
    assert "ended: bye" in log  # baresip hung up when its WAV ended

    assert outcome.decoded is not None, outcome.log[-3000:]
    heard, rate = read_wav(outcome.decoded)
    samples = np.frombuffer(heard, dtype="<i2").astype(np.float64)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)  # 20 ms at 8 kHz
    loud = np.sqrt((frames**2).mean(axis=1)) > 500
    assert rate == 8000 and loud.sum() >= 25, f"{loud.sum()} loud 20 ms frames"  # >= 0.5 s of sound
    transcript = _recognise(outcome.decoded)
    assert word_error_rate(ANSWER.lower().rstrip("."), transcript) <= 0.6, transcript
