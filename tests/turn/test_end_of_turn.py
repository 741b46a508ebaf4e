"""RuleBasedEndOfTurn: how finished a partial transcript sounds."""

from __future__ import annotations

import pytest

from palaver.turn import EndOfTurnModel, RuleBasedEndOfTurn

MODEL = RuleBasedEndOfTurn()


@pytest.mark.parametrize(
    ("transcript", "expected"),
    [
        # nothing recognised yet
        ("", 0.5), ("   ", 0.5), ("...", 0.5),
        # trailing off
        ("I was going to say,", 0.2), ("well...", 0.2), ("the thing is —", 0.2), ("options:", 0.2),
        # fillers
        ("I'd like um", 0.1), ("so uh", 0.1), ("book it for, hmm", 0.1),
        # articles, conjunctions, possessives
        ("I want the", 0.1), ("can I get a", 0.1), ("pizza and", 0.1), ("yes but", 0.1),
        ("tea or", 0.1), ("it's late so", 0.1), ("I called because", 0.1), ("this is my", 0.1),
        ("I want the.", 0.1), ("and?", 0.1),
        # prepositions, auxiliaries, pronouns, complement-wanting verbs
        ("I want to", 0.1), ("a cup of", 0.1), ("coffee with", 0.1), ("my name is", 0.1),
        ("it's like", 0.1), ("yesterday I", 0.1), ("I need", 0.1), ("I'm", 0.1), ("I’m", 0.1),
        # ... unless a question strands them
        ("what is it for?", 0.8), ("do you know where it is?", 0.8), ("who are you talking to?", 0.8),
        # set endings
        ("I think so", 0.9), ("not yet.", 1.0),
        # one word
        ("yes", 0.9), ("Thanks!", 1.0), ("okay", 0.9), ("Hello.", 1.0), ("no", 0.9),
        ("Paris", 0.5), ("Tuesday?", 0.5),
        # complete clauses
        ("I'd like a large pizza", 0.9), ("I'd like a large pizza.", 1.0),
        ("what time do you open?", 1.0), ("thank you", 0.9), ("turn the lights on", 0.9),
        # other languages fall through to the length rules
        ("je voudrais une pizza", 0.9), ("привет", 0.5),
    ],
)  # fmt: skip
def test_examples(transcript: str, expected: float) -> None:
    assert MODEL.completeness(transcript) == pytest.approx(expected)


def test_unfinished_scores_below_unknown_below_complete() -> None:
    unfinished = MODEL.completeness("could you tell me about the")
    unknown = MODEL.completeness("")
    complete = MODEL.completeness("could you tell me about the weather")
    assert unfinished < unknown < complete


def test_is_an_end_of_turn_model() -> None:
    model: EndOfTurnModel = RuleBasedEndOfTurn()
    assert 0.0 <= model.completeness("anything at all") <= 1.0
