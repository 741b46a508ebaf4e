"""EspeakTTS: in-process espeak-ng through ctypes."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from palaver.backends.base import BackendUnavailable, TextToSpeech
from palaver.backends.stt.pocketsphinx import PocketsphinxSTT
from palaver.backends.tts import espeak
from palaver.backends.tts.espeak import DEFAULT_VOICE, VOICES, EspeakTTS, resolve_voice, words_per_minute
from tests.support.speech import silence, to_rate, word_error_rate

SENTENCE = "Please remind me to call my sister tomorrow morning about the dinner plans for Saturday."
SHORT = "Hello there, how are you today?"


@pytest.fixture(scope="module")
def tts() -> EspeakTTS:
    return EspeakTTS()


def speak(tts: EspeakTTS, text: str, voice: str = "alloy", speed: float = 1.0) -> list[bytes]:
    chunks: list[bytes] = []

    def sink(chunk: bytes) -> bool:
        chunks.append(chunk)
        return True

    tts.synthesize(text, voice=voice, speed=speed, sink=sink)
    return chunks


def seconds(tts: EspeakTTS, chunks: list[bytes]) -> float:
    return sum(len(c) for c in chunks) / 2 / tts.sample_rate


def test_implements_the_protocol(tts: EspeakTTS) -> None:
    backend: TextToSpeech = tts
    assert backend.name == "espeak-ng"
    assert backend.sample_rate == 22050


def test_sentence_length_is_plausible(tts: EspeakTTS) -> None:
    words = len(SENTENCE.split())
    duration = seconds(tts, speak(tts, SENTENCE))
    assert 0.3 * words <= duration <= 1.0 * words


def test_long_sentence_streams_small_even_chunks(tts: EspeakTTS) -> None:
    chunks = speak(tts, SENTENCE)
    assert len(chunks) > 10
    chunk_bytes = 2 * (tts.sample_rate * 20 // 1000)
    assert all(len(c) == chunk_bytes for c in chunks[:-1])  # ~20 ms each
    assert 0 < len(chunks[-1]) <= chunk_bytes and len(chunks[-1]) % 2 == 0


def test_custom_chunk_size() -> None:
    chunks = speak(EspeakTTS(chunk_ms=40), SHORT)
    assert {len(c) for c in chunks[:-1]} == {2 * 882}


def test_speed_changes_duration(tts: EspeakTTS) -> None:
    fast = seconds(tts, speak(tts, SENTENCE, speed=1.5))
    normal = seconds(tts, speak(tts, SENTENCE, speed=1.0))
    slow = seconds(tts, speak(tts, SENTENCE, speed=0.5))
    assert fast < normal < slow
    assert slow > 1.6 * fast


def test_speed_maps_to_words_per_minute() -> None:
    assert words_per_minute(1.0) == 175
    assert words_per_minute(1.5) == words_per_minute(4.0) == 262
    assert words_per_minute(0.25) == words_per_minute(0.0) == 44


def test_abort_stops_after_the_first_chunk(tts: EspeakTTS) -> None:
    full = seconds(tts, speak(tts, SENTENCE))
    calls: list[bytes] = []

    def sink(chunk: bytes) -> bool:
        calls.append(chunk)
        return False

    tts.synthesize(SENTENCE, voice="alloy", speed=1.0, sink=sink)
    assert len(calls) == 1  # not called again once it said stop
    assert seconds(tts, calls) < full / 10
    # The engine is fine afterwards.
    assert seconds(tts, speak(tts, SENTENCE)) == pytest.approx(full)


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_gives_no_audio(tts: EspeakTTS, text: str) -> None:
    assert speak(tts, text) == []


def test_sink_errors_propagate_and_leave_the_engine_usable(tts: EspeakTTS) -> None:
    def sink(chunk: bytes) -> bool:
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        tts.synthesize(SENTENCE, voice="alloy", speed=1.0, sink=sink)
    assert len(speak(tts, SHORT)) > 1


def test_concurrent_calls_each_get_their_whole_audio(tts: EspeakTTS) -> None:
    # espeak-ng's output varies by a few samples from run to run (noise, filter state), so
    # "whole and not interleaved" is checked by duration and by the shape of each call's chunks.
    jobs = {"a": (SENTENCE, "alloy"), "b": ("Turn off the lights.", "coral")}
    reference = {key: seconds(tts, speak(tts, text, voice)) for key, (text, voice) in jobs.items()}
    assert reference["a"] > 2 * reference["b"]
    chunk_bytes = 2 * (tts.sample_rate * 20 // 1000)
    calls: dict[str, list[list[bytes]]] = {key: [] for key in jobs}
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def run(key: str) -> None:
        text, voice = jobs[key]
        try:
            start.wait(timeout=10)
            for _ in range(3):
                got: list[bytes] = []
                calls[key].append(got)

                def sink(chunk: bytes, got: list[bytes] = got) -> bool:
                    got.append(chunk)
                    time.sleep(0.0002)  # give the other thread every chance to cut in
                    return True

                tts.synthesize(text, voice=voice, speed=1.0, sink=sink)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(key,)) for key in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for key in jobs:
        assert len(calls[key]) == 3
        for got in calls[key]:
            assert seconds(tts, got) == pytest.approx(reference[key], rel=0.03)
            assert all(len(c) == chunk_bytes for c in got[:-1])


def test_openai_voices_map_to_distinct_espeak_voices(tts: EspeakTTS) -> None:
    assert set(VOICES) == {
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    }
    used = {tts.voice_for(voice) for voice in VOICES}
    assert used == set(VOICES.values())
    assert len(used) == len(VOICES)
    for voice in VOICES:
        assert seconds(tts, speak(tts, SHORT, voice)) > 1.0


def test_unknown_voice_falls_back_to_the_default(tts: EspeakTTS) -> None:
    default = VOICES[DEFAULT_VOICE]
    for name in ("nova", "no such voice\u00e9", "", "en-gb", "x" * 200, "nul\0byte"):
        assert tts.voice_for(name) == default, name
        assert seconds(tts, speak(tts, SHORT, name)) > 1.0
    assert tts.voice_for("ALLOY") == tts.voice_for(" Alloy ") == default


def test_raw_espeak_voice_names_are_accepted(tts: EspeakTTS) -> None:
    assert resolve_voice("en-us+f5") == "en-us+f5"
    assert resolve_voice("Marin") == "en-us+f3"
    assert tts.voice_for("en-us+f5") == "en-us+f5"
    assert tts.voice_for("en-GB-x-rp") == "en-GB-x-rp"
    assert tts.voice_for("de") == "de"
    assert seconds(tts, speak(tts, "Guten Tag, wie geht es Ihnen?", "de")) > 1.0


def test_default_voice_is_intelligible_to_pocketsphinx(tts: EspeakTTS) -> None:
    # espeak-ng is robotic and varies run to run; pocketsphinx gets ~20-50 % WER on its default
    # voice (klatt2, the variant it understands best). Noise, or audio at the wrong sample rate,
    # scores ~100 %. This checks the words really are in the audio.
    stt = PocketsphinxSTT()
    texts = [
        "what is the weather in paris tomorrow",
        "send a message to john saying i am running late",
        "can you tell me a joke about cats",
    ]
    errors = []
    for text in texts:
        speech = to_rate(b"".join(speak(tts, text)), tts.sample_rate, 16000)
        pcm = silence(250, 16000) + speech + silence(250, 16000)
        stream = stt.open_stream()
        for i in range(0, len(pcm), 640):
            stream.push(pcm[i : i + 640])
        errors.append(word_error_rate(text, stream.finish().text))
    assert sum(errors) / len(errors) <= 0.6, errors


def test_missing_library_is_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="espeak-ng library not found"):
        EspeakTTS(library_path="/nonexistent/libespeak-ng.so.1")


def test_without_the_wheel_debian_library_is_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import fails
    candidates = espeak._library_candidates()
    assert len(candidates) == 1
    path, data = candidates[0]
    assert "espeak-ng" in path and data is None
    monkeypatch.setattr(espeak, "_library_candidates", lambda: [("/nonexistent/libespeak-ng.so.1", None)])
    with pytest.raises(BackendUnavailable, match=r"espeakng-loader.*libespeak-ng1"):
        EspeakTTS()
