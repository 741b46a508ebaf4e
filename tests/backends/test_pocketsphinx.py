"""PocketsphinxSTT on real synthetic speech (flite kal16), fed in 20 ms chunks."""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Iterator

import pytest

from palaver.audio.formats import InputDecoder
from palaver.backends.base import BackendError, BackendUnavailable, SpeechToText, Transcript
from palaver.backends.stt.pocketsphinx import PocketsphinxSTT
from tests.support.speech import flite_speech, silence, to_rate, word_error_rate

WEATHER = "what is the weather in paris tomorrow"
LIGHTS = "turn off the lights in the living room"
LONG = "please remind me to call my sister tomorrow morning about the dinner plans for saturday"


def utterance(text: str, rate: int = 16000) -> bytes:
    pcm = silence(250, 16000) + flite_speech(text) + silence(250, 16000)
    return pcm if rate == 16000 else to_rate(pcm, 16000, rate)


def chunks(pcm: bytes, size: int = 640) -> Iterator[bytes]:
    for i in range(0, len(pcm), size):
        yield pcm[i : i + size]


def transcribe(stt: PocketsphinxSTT, pcm: bytes) -> tuple[Transcript, list[str]]:
    stream = stt.open_stream(language="en")
    partials = [p for p in (stream.push(c) for c in chunks(pcm)) if p is not None]
    return stream.finish(), partials


@pytest.fixture(scope="module")
def stt() -> PocketsphinxSTT:
    backend = PocketsphinxSTT()
    backend.warm_up()
    return backend


def test_implements_the_protocol(stt: PocketsphinxSTT) -> None:
    backend: SpeechToText = stt
    assert backend.sample_rate == 16000
    assert backend.name == "pocketsphinx"


@pytest.mark.parametrize("text", [WEATHER, LIGHTS])
def test_transcribes_flite_speech(stt: PocketsphinxSTT, text: str) -> None:
    pcm = utterance(text)
    result, _ = transcribe(stt, pcm)
    assert word_error_rate(text, result.text) <= 0.15, result.text
    assert result.audio_seconds == pytest.approx(len(pcm) / 32000)


def test_partials_arrive_before_finish(stt: PocketsphinxSTT) -> None:
    pcm = utterance(LONG)
    stream = stt.open_stream()
    first_partial_at = None
    partials = []
    for i, chunk in enumerate(chunks(pcm)):
        partial = stream.push(chunk)
        if partial is not None:
            partials.append(partial)
            if first_partial_at is None and partial:
                first_partial_at = i * 640
    result = stream.finish()
    assert first_partial_at is not None and first_partial_at < len(pcm) // 3
    assert len(partials) >= 5
    assert all(a != b for a, b in itertools.pairwise(partials))  # only changes are reported
    assert word_error_rate(LONG, partials[-1]) <= 0.3
    assert word_error_rate(LONG, result.text) <= 0.15, result.text


def test_audio_at_24k_through_the_resampler_transcribes(stt: PocketsphinxSTT) -> None:
    wire = utterance(WEATHER, rate=24000)  # 16 kHz speech, resampled up to the Realtime wire rate
    decoder = InputDecoder("audio/pcm", 16000)
    stream = stt.open_stream()
    for chunk in chunks(wire, 960):  # 20 ms of 24 kHz audio
        stream.push(decoder.decode(chunk))
    stream.push(decoder.flush())
    result = stream.finish()
    assert word_error_rate(WEATHER, result.text) <= 0.15, result.text


def test_odd_sized_pushes(stt: PocketsphinxSTT) -> None:
    pcm = utterance(LIGHTS)
    stream = stt.open_stream()
    for chunk in chunks(pcm, 333):
        stream.push(chunk)
    result = stream.finish()
    assert word_error_rate(LIGHTS, result.text) <= 0.15, result.text
    assert result.audio_seconds == pytest.approx(len(pcm) / 32000)


def test_silence_gives_an_empty_transcript(stt: PocketsphinxSTT) -> None:
    result, partials = transcribe(stt, silence(1000, 16000))
    assert result.text == ""
    assert result.audio_seconds == pytest.approx(1.0)
    assert partials == []


def test_sequential_streams_reuse_one_decoder() -> None:
    stt = PocketsphinxSTT()
    assert stt.decoders_created == 0  # lazy
    first, _ = transcribe(stt, utterance(WEATHER))
    second, _ = transcribe(stt, utterance(LIGHTS))
    assert stt.decoders_created == 1
    assert stt.idle_decoders == 1
    assert word_error_rate(WEATHER, first.text) <= 0.15
    assert word_error_rate(LIGHTS, second.text) <= 0.15


def test_a_reused_decoder_decodes_like_a_fresh_one() -> None:
    # Live cepstral-mean normalisation adapts to each caller's channel; a pooled decoder
    # must not carry the previous caller's channel (here: telephone-band audio) into the next.
    text = "please book a table for two at seven"
    fresh, _ = transcribe(PocketsphinxSTT(), utterance(text))
    stt = PocketsphinxSTT()
    narrow = to_rate(to_rate(utterance(LONG), 16000, 8000), 8000, 16000)
    transcribe(stt, narrow)
    reused, _ = transcribe(stt, utterance(text))
    assert stt.decoders_created == 1
    assert reused.text == fresh.text


def test_concurrent_streams_get_their_own_decoders() -> None:
    stt = PocketsphinxSTT()
    stt.warm_up()
    texts = {"a": WEATHER, "b": LIGHTS}
    results: dict[str, str] = {}
    errors: list[BaseException] = []
    opened = threading.Barrier(2)

    def run(key: str) -> None:
        try:
            stream = stt.open_stream()
            opened.wait(timeout=10)  # both streams are open at once
            for chunk in chunks(utterance(texts[key])):
                stream.push(chunk)
            results[key] = stream.finish().text
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert stt.decoders_created == 2
    assert stt.idle_decoders == 2
    for key, text in texts.items():
        assert word_error_rate(text, results[key]) <= 0.15, results[key]
    transcribe(stt, utterance(WEATHER))
    assert stt.decoders_created == 2


def test_dropped_and_closed_streams_return_their_decoder() -> None:
    stt = PocketsphinxSTT()
    stream = stt.open_stream()
    stream.push(utterance(LIGHTS)[:32000])  # abandoned mid-utterance
    del stream
    gc.collect()
    assert stt.idle_decoders == 1
    # The reused decoder starts clean: nothing of the abandoned utterance leaks in.
    result, _ = transcribe(stt, utterance(WEATHER))
    assert word_error_rate(WEATHER, result.text) <= 0.15, result.text
    with stt.open_stream() as closed:
        closed.push(silence(100, 16000))
    assert closed.closed
    assert stt.idle_decoders == 1
    assert stt.decoders_created == 1


def test_spent_stream_refuses_more_audio(stt: PocketsphinxSTT) -> None:
    stream = stt.open_stream()
    stream.push(silence(100, 16000))
    stream.finish()
    with pytest.raises(BackendError, match="finished or closed"):
        stream.push(silence(20, 16000))
    with pytest.raises(BackendError):
        stream.finish()
    stream.close()  # idempotent


def test_idle_decoders_are_capped() -> None:
    stt = PocketsphinxSTT(max_idle=1)
    a, b = stt.open_stream(), stt.open_stream()
    a.close()
    b.close()
    assert stt.decoders_created == 2
    assert stt.idle_decoders == 1


@pytest.mark.parametrize("language", [None, "", "en", "en-US", "en_gb"])
def test_english_is_accepted(stt: PocketsphinxSTT, language: str | None) -> None:
    stt.open_stream(language=language, prompt="weather words").close()


def test_other_languages_are_refused(stt: PocketsphinxSTT) -> None:
    with pytest.raises(BackendError) as info:
        stt.open_stream(language="fr")
    assert info.value.code == "unsupported_language"
    assert not info.value.retryable


def test_model_load_failure_is_backend_unavailable() -> None:
    stt = PocketsphinxSTT(decoder_options={"hmm": "/nonexistent/acoustic-model"})
    with pytest.raises(BackendUnavailable, match="could not load its model"):
        stt.warm_up()
    with pytest.raises(BackendUnavailable):
        stt.open_stream()
