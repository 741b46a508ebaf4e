"""Seeded mutation fuzzing of the datagram parser and the stream framer.

A bounded, seeded ``random`` mutator (many cases, cheap): bit flips,
truncations, insertions, deletions, splices of SIP-significant bytes, and
random stream chunkings.  test_fuzz_hypothesis.py drives the same mutations
through hypothesis.  The parser and framer must
only ever give a message or a SipParseError; the catch-all that turns a
foreign exception into "Unparseable message" must never fire.
"""

from __future__ import annotations

import random

import pytest

from palaver.sip import Request, Response, SipParseError, StreamFramer, parse_message

from .conftest import FOLDERS, load, names

CASES_PER_FILE = 500
TOKENS = [
    b"\r\n",
    b"\r\n\r\n",
    b"\r",
    b"\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"=",
    b"@",
    b"%",
    b"%4",
    b"%zz",
    b'"',
    b"\\",
    b"<",
    b">",
    b"[",
    b"]",
    b"?",
    b"&",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"SIP/2.0",
    b"Content-Length: ",
    b"l: 99999999999999999999",
    b"-1",
    b"0",
    b"4294967296",
    b"9" * 5000,
    b"\r\n ",
    b"sip:",
    b"tel:",
    b"[::1]",
    b"Via: SIP/2.0/UDP",
    b"CSeq: 1 INVITE",
    b"SIP/" + b"9" * 5000 + b".0",
    b":" + b"9" * 5000,
    b";rport=" + b"9" * 5000,
    b"SIP/2.0 " + b"9" * 5000 + b" OK",
]


def all_files() -> list[tuple[str, bytes]]:
    return [(f"{folder}/{name}", load(folder, name)) for folder in FOLDERS for name in names(folder)]


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            del buf[pos:]
        elif op == 2:
            buf[pos:pos] = rng.choice(TOKENS)
        elif op == 3:
            del buf[pos : pos + rng.randint(1, 20)]
        elif op == 4:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            j = rng.randint(0, len(buf))
            buf[pos:pos] = buf[j : j + rng.randint(1, 40)]
    return bytes(buf)


def check_datagram(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        assert not exc.reason.startswith("Unparseable"), (exc.reason, data)
        assert 400 <= exc.status <= 599
        return
    assert isinstance(msg, Request | Response)
    # Whatever is accepted must serialise and parse back; serialising is then a fixed point
    # (the first serialisation may only normalise Content-Length).
    wire = msg.to_bytes()
    again = parse_message(wire)
    assert again.body == msg.body, data
    assert again.to_bytes() == wire, data


def test_fuzz_datagrams() -> None:
    rng = random.Random(4475)
    for _label, data in all_files():
        for _ in range(CASES_PER_FILE):
            check_datagram(mutate(rng, data))


@pytest.mark.parametrize("seed", range(3))
def test_fuzz_truncations(seed: int) -> None:
    for _label, data in all_files():
        for cut in range(seed, len(data), 7):
            check_datagram(data[:cut])


def stream_messages() -> list[bytes]:
    out = []
    for folder in ("valid", "application", "transaction"):
        for name in names(folder):
            data = load(folder, name)
            if name == "dblreq":
                data = data[: data.index(b"\r\n\r\n") + 4]
            try:
                parse_message(data)
            except SipParseError:
                continue
            out.append(data)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_random_chunkings_with_keepalives(seed: int) -> None:
    rng = random.Random(seed)
    messages = stream_messages()
    rng.shuffle(messages)
    stream = bytearray()
    for m in messages:
        stream += rng.choice([b"", b"\r\n", b"\r\n\r\n"]) + m
    framer = StreamFramer()
    got: list[Request | Response | SipParseError] = []
    i = 0
    while i < len(stream):
        n = rng.choice([1, 2, 3, 17, 200, 1500, 4096])
        got.extend(framer.feed(bytes(stream[i : i + n])))
        i += n
    assert got == [parse_message(m) for m in messages]
    assert framer.buffered == 0 and not framer.broken


def test_fuzz_streams() -> None:
    rng = random.Random(5626)
    messages = stream_messages()
    for _ in range(300):
        stream = b"".join(rng.sample(messages, 3))
        stream = mutate(rng, stream)
        framer = StreamFramer(max_header_bytes=8192, max_body_bytes=8192)
        i = 0
        while i < len(stream):
            n = rng.randint(1, 600)
            for item in framer.feed(stream[i : i + n]):
                if isinstance(item, SipParseError):
                    assert not item.reason.startswith("Unparseable"), item.reason
                else:
                    assert isinstance(item, Request | Response)
            assert framer.buffered <= 8192 + 8192 + 600
            i += n
