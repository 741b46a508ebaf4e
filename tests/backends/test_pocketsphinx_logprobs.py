import math

from palaver.backends.stt.pocketsphinx import PocketsphinxSTT, words_of
from tests.support.speech import flite_speech, silence

TEXT = "what is the weather in paris tomorrow"


def test_final_transcript_has_a_log_probability_per_word() -> None:
    stream = PocketsphinxSTT().open_stream()
    stream.push(silence(200, 16000) + flite_speech(TEXT) + silence(200, 16000))
    result = stream.finish()
    assert " ".join(w for w, _ in result.word_logprobs) == result.text
    assert all(lp <= 0.0 for _, lp in result.word_logprobs)
    assert any(lp < 0.0 for _, lp in result.word_logprobs)


def test_fillers_and_alternates_are_cleaned_and_mismatches_dropped() -> None:
    segments = [("<s>", 1.0), ("the(2)", 0.5), ("<sil>", 1.0), ("[NOISE]", 1.0), ("cat", 0.25), ("</s>", 1.0)]
    assert words_of(segments, "the cat") == (("the", math.log(0.5)), ("cat", math.log(0.25)))
    assert words_of(segments, "a cat") == ()
