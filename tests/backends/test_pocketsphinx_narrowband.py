"""Telephone (8 kHz G.711) audio: decoded per utterance, since live decoding of it fails."""

import numpy as np

from palaver.audio.formats import InputDecoder
from palaver.audio.g711 import ulaw_encode
from palaver.backends.stt.pocketsphinx import PocketsphinxSTT
from tests.support.speech import flite_speech, silence, to_rate, word_error_rate

TEXTS = ["what is the weather in paris tomorrow", "turn off the lights in the living room"]


def _telephone_audio_at_16k(text: str) -> bytes:
    pcm = silence(200, 16000) + flite_speech(text) + silence(300, 16000)
    wire = ulaw_encode(np.frombuffer(to_rate(pcm, 16000, 8000), dtype="<i2")).tobytes()
    decoder = InputDecoder("audio/pcmu", 16000)
    return b"".join(decoder.decode(wire[i : i + 160]) for i in range(0, len(wire), 160)) + decoder.flush()


def _transcribe(stt: PocketsphinxSTT, pcm: bytes, *, narrowband: bool) -> str:
    stream = stt.open_stream(narrowband=narrowband)
    for i in range(0, len(pcm), 640):
        assert stream.push(pcm[i : i + 640]) is None or not narrowband
    return stream.finish().text


def test_narrowband_stream_transcribes_telephone_speech() -> None:
    stt = PocketsphinxSTT(max_idle=1)  # one decoder, reused: state from earlier utterances must not leak
    wideband = silence(200, 16000) + flite_speech(TEXTS[1]) + silence(300, 16000)
    assert word_error_rate(TEXTS[1], _transcribe(stt, wideband, narrowband=False)) <= 0.15
    for text in TEXTS:
        heard = _transcribe(stt, _telephone_audio_at_16k(text), narrowband=True)
        assert word_error_rate(text, heard) <= 0.15, heard
