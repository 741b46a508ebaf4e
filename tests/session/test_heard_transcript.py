from palaver.session.conversation import StoredAudio


def audio(ms: int) -> bytes:
    return b"\0\0" * 24 * ms  # audio/pcm, 24 kHz


def test_whole_and_partial_pieces() -> None:
    stored = StoredAudio("audio/pcm", audio(3000), [(0.0, "Hello there. "), (1000.0, "One two three four.")])
    assert stored.heard_transcript(3000) == "Hello there. One two three four."
    assert stored.heard_transcript(1000) == "Hello there."
    assert stored.heard_transcript(2000) == "Hello there. One two"  # half of the second piece's audio
    assert stored.heard_transcript(500) == "Hello"
    assert stored.heard_transcript(0) == ""


def test_no_marks_means_nothing_known_to_be_heard() -> None:
    assert StoredAudio("audio/pcmu", b"\xff" * 8000).heard_transcript(500) == ""
