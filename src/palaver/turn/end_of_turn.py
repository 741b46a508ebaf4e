"""How finished do the words so far sound? The end-of-turn signal behind ``semantic_vad``.

A model answers ``completeness(transcript)`` with a number in ``[0, 1]``: 1 means "this
sounds like the end of what the user wanted to say", 0 means "they are clearly mid-sentence".
:class:`~palaver.turn.detector.TurnDetector` turns that number into how much silence it
waits for before ending the turn (see its module docstring).

:class:`EndOfTurnModel` is a ``Protocol``: anything with a ``completeness`` method fits, so
a learned classifier (for example a small text model scoring "is this utterance complete?")
can replace :class:`RuleBasedEndOfTurn` without touching the detector. ``completeness`` is
called once per transcript update, from the same thread as ``TurnDetector.push``; keep it
fast or precompute elsewhere and hand the detector a cached answer.

:class:`RuleBasedEndOfTurn`, the offline default, is English-oriented and explainable. The
last word decides, checked in this order (the first rule that applies wins):

1. no words at all (nothing recognised yet): 0.5, unknown;
2. the text trails off (ends with ``,`` ``;`` ``:`` ``-`` ``—`` ``...`` ``…``): 0.2;
3. the last word is a filler (um, uh, er, hmm …): 0.1;
4. the last word is an article, conjunction or possessive (the, a, and, but, or, so,
   because, my, your …): 0.1, except set endings such as "I think so", "not yet";
5. the last word is a preposition, auxiliary/copula, subject pronoun or a verb that wants a
   complement (to, of, with, is, are, can, i, i'm, want, like …): 0.1, but 0.8 when the
   text ends with ``?``;
6. a single word that is a complete answer (yes, no, okay, thanks, hello, bye …): 0.9;
7. any other single word: 0.5;
8. anything else (a clause ending in a content word): 0.9.

A final ``.``, ``!`` or ``?`` from the recogniser adds 0.1 to rules 6 and 8
(capped at 1.0). The ``?`` exception covers questions that strand a
preposition or verb ("what is it for?", "do you know where it is?"). Text in other languages
matches none of the word lists and falls through to the length rules.
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["EndOfTurnModel", "RuleBasedEndOfTurn"]


class EndOfTurnModel(Protocol):
    """Scores how finished a partial transcript sounds."""

    def completeness(self, transcript: str) -> float:
        """A number in ``[0, 1]``: 1 = sounds finished, 0 = clearly unfinished, 0.5 = unknown."""
        ...


UNKNOWN = 0.5
TRAILING_OFF = 0.2
UNFINISHED = 0.1
STRANDED_QUESTION = 0.8
SHORT_FRAGMENT = 0.5
COMPLETE = 0.9
PUNCTUATION_BONUS = 0.1

FILLERS = frozenset({"um", "umm", "uh", "uhh", "uhm", "er", "erm", "ah", "hmm", "mm", "mmm", "eh"})

#: Words that cannot end a sentence, whatever the punctuation says.
DANGLING = frozenset(
    {
        # articles and determiners
        "a", "an", "the", "every",
        # coordinating and subordinating conjunctions
        "and", "but", "or", "nor", "so", "yet", "because", "since", "although", "though",
        "if", "unless", "until", "while", "whereas", "than", "that's", "whether",
        # possessives
        "my", "your", "his", "its", "our", "their",
    }
)  # fmt: skip

#: Words that usually leave a sentence open, except at the end of a question.
OPEN_ENDED = frozenset(
    {
        # prepositions (and the infinitive "to")
        "to", "of", "with", "for", "from", "at", "about", "into", "onto", "under", "between",
        "through", "during", "without", "like", "as", "via",
        # auxiliaries and copulas
        "is", "are", "was", "were", "be", "been", "am", "do", "does", "did", "have", "has",
        "had", "can", "could", "will", "would", "shall", "should", "may", "might", "must",
        # subject pronouns and contracted subjects
        "i", "we", "they", "he", "she", "i'm", "i've", "i'd", "i'll", "we're", "they're",
        "it's", "there's", "let's", "you're",
        # verbs that want a complement
        "want", "wanna", "need", "gonna", "gotta",
    }
)  # fmt: skip

#: One-word utterances that are complete answers or greetings on their own.
COMPLETE_WORDS = frozenset(
    {
        "yes", "yeah", "yep", "yup", "no", "nope", "nah", "ok", "okay", "sure", "right",
        "correct", "exactly", "absolutely", "definitely", "fine", "great", "good", "cool",
        "perfect", "thanks", "thank", "cheers", "hello", "hi", "hey", "bye", "goodbye",
        "please", "sorry", "stop", "wait", "done", "agreed", "maybe", "nothing", "never",
        "always", "wrong", "true", "false",
    }
)  # fmt: skip

#: Two-word endings that finish a sentence although their last word is listed above.
COMPLETE_ENDINGS = frozenset(
    {("think", "so"), ("hope", "so"), ("guess", "so"), ("believe", "so"), ("suppose", "so"),
     ("said", "so"), ("not", "yet"), ("even", "so"), ("or", "so")}
)  # fmt: skip

_TRAILING_OFF = (",", ";", ":", "-", "—", "–", "...", "…")
_TERMINAL = (".", "!", "?")
_WORD = re.compile(r"\w+(?:'\w+)?")


class RuleBasedEndOfTurn:
    """The offline default :class:`EndOfTurnModel`: word-list rules on the last word."""

    def completeness(self, transcript: str) -> float:
        text = transcript.strip().lower().replace("’", "'")
        words = _WORD.findall(text)
        if not words:
            return UNKNOWN
        if text.endswith(_TRAILING_OFF):
            return TRAILING_OFF
        last = words[-1]
        if tuple(words[-2:]) in COMPLETE_ENDINGS:
            last = ""  # "I think so": judged as a clause ending in a content word
        if last in FILLERS or last in DANGLING:
            return UNFINISHED
        if last in OPEN_ENDED:
            return STRANDED_QUESTION if text.endswith("?") else UNFINISHED
        bonus = PUNCTUATION_BONUS if text.endswith(_TERMINAL) else 0.0
        if len(words) == 1:
            return min(1.0, COMPLETE + bonus) if last in COMPLETE_WORDS else SHORT_FRAGMENT
        return min(1.0, COMPLETE + bonus)
