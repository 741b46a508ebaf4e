"""`palaver serve` with nothing configured: the echo brain repeats what it heard, offline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.realtime_client import collect_until, connect, joined_audio, of_type, send_audio
from tests.support.server import PalaverServer, running_server
from tests.support.speech import flite_speech, silence, to_rate, word_error_rate

pytestmark = pytest.mark.e2e

SPOKEN = "turn off the lights in the living room"


@pytest.fixture(scope="module")
def bare_server() -> Iterator[PalaverServer]:
    with running_server({"PALAVER_LLM_BASE_URL": None, "PALAVER_API_KEY": None}) as server:
        yield server


async def test_echo_brain_repeats_the_spoken_words(bare_server) -> None:
    wire = to_rate(silence(200, 16000) + flite_speech(SPOKEN) + silence(300, 16000), 16000, 24000)
    async with connect(bare_server, audio={"input": {"turn_detection": None}}) as conn:
        await send_audio(conn, wire, chunk_bytes=1920)
        await conn.input_audio_buffer.commit()
        await conn.response.create()
        events = await collect_until(conn, "response.done")
    assert events[-1].response.status == "completed"
    said = of_type(events, "response.output_audio_transcript.done")[0].transcript
    assert said.startswith("You said: ")
    assert word_error_rate(SPOKEN, said.removeprefix("You said: ").rstrip(".")) <= 0.2
    assert len(joined_audio(events)) > 24000 * 2  # over a second of speech
