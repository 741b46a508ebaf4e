"""Property-based fuzzing (hypothesis) of the parser and the framer over mutated torture messages.

Bounded and derandomised so CI is fast and repeatable; the seeded mutator in
test_fuzz.py covers many more cases.  The only acceptable outcomes are a
message or a SipParseError (never the catch-all "Unparseable message").
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palaver.sip import Request, Response, SipParseError, StreamFramer, parse_message

from .conftest import FOLDERS, load, names
from .test_fuzz import TOKENS

FILES = [load(folder, name) for folder in FOLDERS for name in names(folder) if name != "<missing>"]
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    buf = bytearray(draw(st.sampled_from(FILES)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "token", "delete", "duplicate"]))
        pos = draw(st.integers(0, len(buf)))
        if op == "flip" and buf:
            i = min(pos, len(buf) - 1)
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "token":
            buf[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del buf[pos : pos + draw(st.integers(1, 20))]
        else:
            j = draw(st.integers(0, len(buf)))
            buf[pos:pos] = buf[j : j + draw(st.integers(1, 40))]
    return bytes(buf)


def outcome(data: bytes) -> Request | Response | SipParseError:
    try:
        return parse_message(data)
    except SipParseError as exc:
        return exc


@FUZZ
@given(mutated())
def test_parser_only_returns_message_or_parse_error(data: bytes) -> None:
    result = outcome(data)
    if isinstance(result, SipParseError):
        assert not result.reason.startswith("Unparseable"), result.reason
        assert 400 <= result.status <= 599
    else:
        again = parse_message(result.to_bytes())
        assert again.body == result.body


@FUZZ
@given(st.lists(mutated(), min_size=1, max_size=3), st.lists(st.integers(1, 700), min_size=1, max_size=40))
def test_framer_only_returns_messages_or_parse_errors(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"\r\n".join(messages)
    framer = StreamFramer(max_header_bytes=8192, max_body_bytes=8192)
    i = k = 0
    while i < len(stream):
        n = cuts[k % len(cuts)]
        k += 1
        for item in framer.feed(stream[i : i + n]):
            if isinstance(item, SipParseError):
                assert not item.reason.startswith("Unparseable"), item.reason
            else:
                assert isinstance(item, Request | Response)
        assert framer.buffered <= 8192 + 8192 + 700
        i += n


@FUZZ
@given(st.sampled_from(FILES), st.lists(st.integers(1, 300), min_size=1, max_size=60))
def test_framer_chunking_does_not_change_the_result(data: bytes, cuts: list[int]) -> None:
    whole = StreamFramer().feed(data)
    framer = StreamFramer()
    got: list[Request | Response | SipParseError] = []
    i = k = 0
    while i < len(data):
        n = cuts[k % len(cuts)]
        k += 1
        got += framer.feed(data[i : i + n])
        i += n
    assert [_summary(x) for x in got] == [_summary(x) for x in whole]


def _summary(item: Request | Response | SipParseError) -> object:
    if isinstance(item, SipParseError):
        return (item.status, item.reason)
    return item
