from palaver.session.transcriber import _Stabilizer


def test_words_are_released_once_two_partials_agree_and_a_word_follows() -> None:
    s = _Stabilizer(lag=1, agree=2)
    assert s.push("what") == ""
    assert s.push("what is") == "what"
    assert s.push("what is the") == " is"
    assert s.push("what is the weather") == " the"
    assert s.rest("what is the weather in paris") == " weather in paris"


def test_unreleased_words_may_change() -> None:
    s = _Stabilizer(lag=1, agree=2)
    assert s.push("one two tree") == ""
    assert s.push("one two three four") == "one two"  # "tree" became "three": not released yet
    assert s.push("one two three four five") == " three four"
    assert s.rest("one two three four five six") == " five six"


def test_rest_is_empty_when_the_final_contradicts_released_words() -> None:
    s = _Stabilizer(lag=0, agree=2)
    s.push("hello world")
    assert s.push("hello world again") == "hello world"
    assert s.rest("yellow world again") == ""
    assert s.rest("hello world again") == " again"


def test_more_partials_must_agree_when_asked() -> None:
    s = _Stabilizer(lag=0, agree=3)
    assert s.push("so") == ""
    assert s.push("set") == ""
    assert s.push("set an") == ""  # "set" seen twice, not three times
    assert s.push("set an alarm") == "set"
    assert s.push("set an alarm for") == " an"
