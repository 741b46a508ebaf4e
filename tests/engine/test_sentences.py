from palaver.engine.sentences import SentenceChunker


def feed(chunker: SentenceChunker, text: str, step: int = 3) -> list[str]:
    pieces: list[str] = []
    for i in range(0, len(text), step):
        pieces += chunker.push(text[i : i + step])
    rest = chunker.flush()
    if rest:
        pieces.append(rest)
    return pieces


def test_pieces_concatenate_to_the_input_exactly() -> None:
    text = "Hello there! How are you today? I am fine.\nThanks for asking, really."
    pieces = feed(SentenceChunker(), text)
    assert "".join(pieces) == text
    assert pieces[0] == "Hello there! "
    assert pieces[1] == "How are you today? "


def test_sentence_is_released_as_soon_as_it_ends() -> None:
    chunker = SentenceChunker()
    assert chunker.push("It is sunny") == []
    assert chunker.push(". Tomor") == ["It is sunny. "]
    assert chunker.flush() == "Tomor"
    assert chunker.flush() is None


def test_decimal_point_does_not_end_a_sentence() -> None:
    assert SentenceChunker().push("It costs 3.50 dollars") == []


def test_long_first_clause_is_cut_at_a_comma_for_early_audio() -> None:
    chunker = SentenceChunker(first_clause_chars=20)
    pieces = chunker.push("Well, let me think about that for a moment without stopping")
    assert pieces == ["Well, "]


def test_run_without_punctuation_is_bounded() -> None:
    words = "word " * 200
    pieces = feed(SentenceChunker(max_chars=100), words, step=7)
    assert "".join(pieces) == words
    assert all(len(p) <= 100 for p in pieces)
    assert len(pieces) >= 10
