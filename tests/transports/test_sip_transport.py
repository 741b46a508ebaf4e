"""The SIP transport adapter over real sockets on 127.0.0.1, driving a fake core."""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from palaver.sip.errors import SipParseError
from palaver.sip.message import Message, Request, Response
from palaver.sip.parser import parse_message
from palaver.sip.peer import Peer
from palaver.sip.status import make_response, response_for_error
from palaver.transports.sip import MAX_UDP_PAYLOAD, SipTransport, SipTransportConfig
from tests.sip.conftest import names as torture_names
from tests.sip.conftest import torture_dir
from tests.support.sip_peers import TlsFiles, make_tls_cert

WAIT = 10.0  # a bound on every wait, never an expectation of speed


class FakeCore:
    """Records what the transport hands it; answers requests with 200 when ``answer`` is set."""

    def __init__(self, *, answer: bool = True) -> None:
        self.answer = answer
        self.received: list[tuple[Message, Peer]] = []
        self.errors: list[Peer] = []
        self.outbox: list[tuple[Message, Peer]] = []
        self.timer: float | None = None
        self.timer_calls: list[float] = []
        self.changed = asyncio.Event()

    def receive(self, message: Message, peer: Peer, now: float) -> None:
        self.received.append((message, peer))
        if self.answer and isinstance(message, Request) and message.method != "ACK":
            self.outbox.append((make_response(message, 200, to_tag="fake"), peer))
        self.changed.set()

    def transport_error(self, peer: Peer, now: float) -> None:
        self.errors.append(peer)
        self.changed.set()

    def transmits(self) -> list[tuple[Message, Peer]]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return self.timer

    def handle_timer(self, now: float) -> None:
        self.timer_calls.append(now)
        self.timer = None
        self.changed.set()

    def send(self, message: Message, peer: Peer) -> None:
        self.outbox.append((message, peer))

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


def sip_request(
    method: str = "OPTIONS", *, cseq: int = 1, call_id: str = "call-1", body: bytes = b""
) -> bytes:
    lines = [
        f"{method} sip:palaver@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-test-" + str(cseq),
        "Max-Forwards: 70",
        "To: <sip:palaver@127.0.0.1>",
        "From: <sip:tester@127.0.0.1>;tag=t1",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # not a DatagramTransport subclass on 3.11

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    async def recv_raw(self) -> bytes:
        async with asyncio.timeout(WAIT):
            return await self.queue.get()

    async def recv(self) -> Message:
        return parse_message(await self.recv_raw())


def status_and_call_id(data: bytes) -> tuple[int, str | None]:
    """Read an answer to garbage: it echoes the garbage's headers, so it may not parse itself."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
    version, status, _ = head[0].split(" ", 2)
    assert version == "SIP/2.0"
    call_id = next((line.split(":", 1)[1].strip() for line in head[1:] if line.startswith("Call-ID:")), None)
    return int(status), call_id


async def start(core: FakeCore | None = None, **config: object) -> SipTransport:
    settings: dict[str, object] = {"host": "127.0.0.1", "port": 0, **config}
    transport = SipTransport(SipTransportConfig(**settings), core)  # type: ignore[arg-type]
    await transport.start()
    return transport


@pytest.fixture
async def core() -> FakeCore:
    return FakeCore()


@pytest.fixture
async def sip(core: FakeCore) -> AsyncIterator[SipTransport]:
    transport = await start(core)
    yield transport
    await transport.close()


@pytest.fixture
async def udp_client() -> AsyncIterator[UdpClient]:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(UdpClient, local_addr=("127.0.0.1", 0))
    yield client
    transport.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_cert(tmp_path_factory.mktemp("tls"))


# ---------------------------------------------------------------------------------------- UDP


async def test_ephemeral_ports_are_exposed_as_contacts(sip: SipTransport) -> None:
    contacts = sip.contacts
    assert set(contacts) == {"udp", "tcp"}
    assert contacts["udp"] == contacts["tcp"]
    host, port = contacts["udp"]
    assert host == "127.0.0.1" and port > 0


async def test_udp_request_reaches_the_core_and_the_answer_goes_back(
    sip: SipTransport, core: FakeCore, udp_client: UdpClient
) -> None:
    udp_client.send(sip_request(), sip.contacts["udp"])
    answer = await udp_client.recv()
    assert isinstance(answer, Response) and answer.status == 200
    [(message, peer)] = core.received
    assert isinstance(message, Request) and message.method == "OPTIONS"
    assert peer == Peer("udp", "127.0.0.1", udp_client.port)


async def test_udp_keepalives_are_ignored(sip: SipTransport, core: FakeCore, udp_client: UdpClient) -> None:
    udp_client.send(b"\r\n\r\n", sip.contacts["udp"])
    udp_client.send(b"\r\n", sip.contacts["udp"])
    udp_client.send(sip_request(), sip.contacts["udp"])
    assert isinstance(await udp_client.recv(), Response)
    assert len(core.received) == 1
    assert sip.stats.keepalives == 2


def _expected_answer(data: bytes) -> int | None:
    """What a conforming transport does with ``data``: the status it answers, or None for silence."""
    try:
        message = parse_message(data)
    except SipParseError as exc:
        response = response_for_error(exc)
        return None if response is None else response.status
    answered = isinstance(message, Request) and message.method != "ACK"
    return 200 if answered else None  # parsed: the fake core answers requests


def _malformed(data: bytes) -> bool:
    try:
        parse_message(data)
    except SipParseError:
        return bool(data.strip(b"\r\n\t "))
    return False


@pytest.mark.parametrize("name", torture_names("invalid"))
async def test_rfc4475_invalid_datagrams_get_their_answer_and_the_server_lives_on(
    name: str, sip: SipTransport, core: FakeCore, udp_client: UdpClient
) -> None:
    data = (torture_dir() / "invalid" / f"{name}.dat").read_bytes()
    expected = _expected_answer(data)
    udp_client.send(data, sip.contacts["udp"])
    udp_client.send(sip_request(call_id="after-garbage"), sip.contacts["udp"])
    # Datagrams on loopback are handled in order: an answer to the bad one comes first, if any.
    answers = [status_and_call_id(await udp_client.recv_raw())]
    if expected is not None:
        answers.append(status_and_call_id(await udp_client.recv_raw()))
        assert answers[0][0] == expected
        assert 200 <= expected < 600
    assert answers[-1] == (200, "after-garbage")


async def test_random_bytes_never_hurt_the_udp_listener(
    sip: SipTransport, core: FakeCore, udp_client: UdpClient
) -> None:
    rng = random.Random(5060)
    good = sip_request()
    blobs = [rng.randbytes(rng.randrange(1, 2000)) for _ in range(40)]
    for _ in range(40):  # mutated real requests: some answerable, most not
        mutated = bytearray(good)
        for _ in range(rng.randrange(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        blobs.append(bytes(mutated))
    blobs += [b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n", b"\x00\x01\x00\x00" + bytes(16), b"\r\n\r\n\r\n x"]
    expected = [_expected_answer(blob) for blob in blobs]
    for blob in blobs:
        udp_client.send(blob, sip.contacts["udp"])
    udp_client.send(sip_request(call_id="survivor"), sip.contacts["udp"])
    count = sum(e is not None for e in expected) + 1
    answers = [status_and_call_id(await udp_client.recv_raw()) for _ in range(count)]
    assert [status for status, _ in answers] == [e for e in expected if e is not None] + [200]
    assert answers[-1] == (200, "survivor")
    assert sip.stats.malformed == sum(_malformed(blob) for blob in blobs)


async def test_a_maximal_datagram_is_handled(
    sip: SipTransport, core: FakeCore, udp_client: UdpClient
) -> None:
    big = sip_request(body=b"x" * (MAX_UDP_PAYLOAD - len(sip_request(body=b"x" * 10000)) + 10000))
    assert len(big) == MAX_UDP_PAYLOAD
    udp_client.send(big, sip.contacts["udp"])
    udp_client.send(sip_request(call_id="small"), sip.contacts["udp"])
    statuses = []
    for _ in range(2):
        answer = await udp_client.recv()
        assert isinstance(answer, Response)
        statuses.append(answer.status)
    assert statuses[-1] == 200
    assert core.received[-1][0].headers.get("Call-ID") == "small"


async def test_a_message_too_big_for_udp_is_dropped_not_raised(
    sip: SipTransport, core: FakeCore, udp_client: UdpClient
) -> None:
    request = parse_message(sip_request())
    assert isinstance(request, Request)
    huge = make_response(request, 200, to_tag="x")
    huge.body = b"y" * (MAX_UDP_PAYLOAD + 1)
    core.send(huge, Peer("udp", "127.0.0.1", udp_client.port))
    sip.flush()
    assert sip.stats.send_failures == 1
    udp_client.send(sip_request(), sip.contacts["udp"])
    answer = await udp_client.recv()
    assert isinstance(answer, Response) and answer.status == 200 and not answer.body


async def test_udp_send_to_a_hostname_is_resolved_off_the_loop(
    sip: SipTransport, core: FakeCore, udp_client: UdpClient
) -> None:
    request = parse_message(sip_request())
    assert isinstance(request, Request)
    core.send(request, Peer("udp", "localhost", udp_client.port))
    sip.flush()
    got = await udp_client.recv()
    assert isinstance(got, Request) and got.method == "OPTIONS"


async def test_messages_before_a_core_is_attached_are_dropped(udp_client: UdpClient) -> None:
    transport = await start(None)
    try:
        udp_client.send(sip_request(), transport.contacts["udp"])
        async with asyncio.timeout(WAIT):
            while transport.stats.dropped_no_core == 0:  # noqa: ASYNC110 - no event to wait on here
                await asyncio.sleep(0.01)
        core = FakeCore()
        transport.attach(core)
        udp_client.send(sip_request(), transport.contacts["udp"])
        assert isinstance(await udp_client.recv(), Response)
        assert len(core.received) == 1
    finally:
        await transport.close()


async def test_a_core_exception_is_logged_not_raised(
    sip: SipTransport, core: FakeCore, udp_client: UdpClient, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0
    original = core.receive

    def explode_once(message: Message, peer: Peer, now: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("core bug")
        original(message, peer, now)

    core.receive = explode_once  # type: ignore[method-assign]
    udp_client.send(sip_request(call_id="boom"), sip.contacts["udp"])
    udp_client.send(sip_request(call_id="fine"), sip.contacts["udp"])
    answer = await udp_client.recv()
    assert isinstance(answer, Response) and answer.headers.get("Call-ID") == "fine"
    assert sip.stats.core_errors == 1
    assert "core bug" in caplog.text


# ------------------------------------------------------------------------------- timer, flush


async def test_the_timer_fires_handle_timer_and_is_rearmed(sip: SipTransport, core: FakeCore) -> None:
    loop = asyncio.get_running_loop()
    core.timer = loop.time() + 0.01
    sip.flush()
    await core.wait_for(lambda: len(core.timer_calls) == 1)
    assert core.timer_calls[0] >= core.timer_calls[0]  # called with the loop clock
    core.timer = loop.time() + 0.01
    sip.flush()
    await core.wait_for(lambda: len(core.timer_calls) == 2)


async def test_a_cancelled_timer_does_not_fire(sip: SipTransport, core: FakeCore) -> None:
    loop = asyncio.get_running_loop()
    core.timer = loop.time() + 0.05
    sip.flush()
    core.timer = None
    sip.flush()
    # A later timer proves the loop went past the cancelled one.
    core.timer = loop.time() + 0.1
    sip.flush()
    await core.wait_for(lambda: len(core.timer_calls) == 1)
    assert core.timer_calls[0] >= core.timer_calls[0]
    assert len(core.timer_calls) == 1


async def test_on_events_runs_after_each_input_and_may_flush_again(
    core: FakeCore, udp_client: UdpClient
) -> None:
    transport = SipTransport(SipTransportConfig(host="127.0.0.1", port=0), core)
    calls: list[int] = []

    def on_events() -> None:
        calls.append(len(core.received))
        if len(calls) == 1:  # the application answers from its callback: one more round, no recursion
            request = core.received[0][0]
            assert isinstance(request, Request)
            core.send(make_response(request, 180, to_tag="fake"), core.received[0][1])
            transport.flush()

    transport.attach(core, on_events)
    await transport.start()
    try:
        core.answer = False
        udp_client.send(sip_request(), transport.contacts["udp"])
        answer = await udp_client.recv()
        assert isinstance(answer, Response) and answer.status == 180
        assert calls == [1, 1]
    finally:
        await transport.close()


# ---------------------------------------------------------------------------------------- TCP


async def _open(sip: SipTransport, name: str = "tcp") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = sip.contacts[name]  # type: ignore[index]
    return await asyncio.open_connection(host, port)


async def _read_message(reader: asyncio.StreamReader) -> Message:
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
        message = parse_message(head)
        length = int(message.headers.get("Content-Length") or 0)
        body = await reader.readexactly(length) if length else b""
    return parse_message(head + body)


async def test_tcp_two_messages_in_one_segment(sip: SipTransport, core: FakeCore) -> None:
    reader, writer = await _open(sip)
    try:
        writer.write(sip_request(cseq=1) + sip_request(cseq=2, body=b"hello"))
        await writer.drain()
        first, second = await _read_message(reader), await _read_message(reader)
        assert isinstance(first, Response) and first.headers.get("CSeq") == "1 OPTIONS"
        assert isinstance(second, Response) and second.headers.get("CSeq") == "2 OPTIONS"
        (_, p1), (m2, p2) = core.received
        assert m2.body == b"hello"
        local = writer.get_extra_info("sockname")
        assert p1 == p2 == Peer("tcp", "127.0.0.1", local[1], p1.connection)
        assert p1.connection is not None
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_one_message_split_across_segments(sip: SipTransport, core: FakeCore) -> None:
    reader, writer = await _open(sip)
    try:
        data = sip_request(body=b"v=0\r\n")
        for i in range(0, len(data), 7):
            writer.write(data[i : i + 7])
            await writer.drain()
            await asyncio.sleep(0)
        answer = await _read_message(reader)
        assert isinstance(answer, Response) and answer.status == 200
        [(message, _)] = core.received
        assert message.body == b"v=0\r\n"
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_double_crlf_ping_gets_a_crlf_pong(sip: SipTransport, core: FakeCore) -> None:
    reader, writer = await _open(sip)
    try:
        writer.write(b"\r\n\r\n")
        async with asyncio.timeout(WAIT):
            assert await reader.readexactly(2) == b"\r\n"
        writer.write(sip_request())
        assert isinstance(await _read_message(reader), Response)
        assert not core.errors
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_framing_error_gets_400_then_the_connection_closes(
    sip: SipTransport, core: FakeCore
) -> None:
    reader, writer = await _open(sip)
    try:
        no_length = sip_request().replace(b"Content-Length: 0\r\n", b"")
        writer.write(no_length)
        answer = await _read_message(reader)
        assert isinstance(answer, Response) and answer.status == 400
        async with asyncio.timeout(WAIT):
            assert await reader.read() == b""
        await core.wait_for(lambda: len(core.errors) == 1)
        assert core.errors[0].transport == "tcp" and core.errors[0].connection is not None
        assert not core.received
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_malformed_but_framed_request_is_answered_and_the_connection_lives(
    sip: SipTransport, core: FakeCore
) -> None:
    reader, writer = await _open(sip)
    try:
        bad = sip_request().replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1)
        writer.write(bad + sip_request(cseq=2))
        first, second = await _read_message(reader), await _read_message(reader)
        assert isinstance(first, Response) and first.status == 505
        assert isinstance(second, Response) and second.status == 200
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_peer_closing_reports_a_transport_error(sip: SipTransport, core: FakeCore) -> None:
    reader, writer = await _open(sip)
    writer.write(sip_request())
    await _read_message(reader)
    writer.close()
    await writer.wait_closed()
    await core.wait_for(lambda: bool(core.errors))
    assert core.errors == [core.received[0][1]]
    assert sip.connection_count == 0


class _SinkServer:
    """A plain TCP server that records what arrives on each accepted connection."""

    def __init__(self) -> None:
        self.connections: list[bytearray] = []
        self.changed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = bytearray()
        self.connections.append(buf)
        while data := await reader.read(65536):
            buf += data
            self.changed.set()
        writer.close()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def test_tcp_outbound_opens_one_connection_and_reuses_it(sip: SipTransport, core: FakeCore) -> None:
    sink = _SinkServer()
    server = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for cseq in (1, 2):
            request = parse_message(sip_request(cseq=cseq))
            core.send(request, Peer("tcp", "127.0.0.1", port))
            sip.flush()  # the second send happens while the first connection may still be opening
        request = parse_message(sip_request(cseq=3))
        await sink.wait_for(lambda: bool(sink.connections) and sink.connections[0].count(b"CSeq: ") == 2)
        core.send(request, Peer("tcp", "127.0.0.1", port))
        sip.flush()
        await sink.wait_for(lambda: sink.connections[0].count(b"CSeq: ") == 3)
        assert len(sink.connections) == 1
        assert sip.stats.connections_opened == 1
    finally:
        await sip.close()
        server.close()
        await server.wait_closed()


async def test_tcp_answer_on_the_connection_the_request_came_on(sip: SipTransport, core: FakeCore) -> None:
    core.answer = False
    reader, writer = await _open(sip)
    try:
        writer.write(sip_request())
        await core.wait_for(lambda: bool(core.received))
        request, peer = core.received[0]
        assert isinstance(request, Request)
        core.send(make_response(request, 486, to_tag="x"), peer)
        sip.flush()
        answer = await _read_message(reader)
        assert isinstance(answer, Response) and answer.status == 486
        assert sip.stats.connections_opened == 0
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_connect_failure_is_a_transport_error_for_the_peer_sent_to(
    sip: SipTransport, core: FakeCore
) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # now nothing listens on ``port``
    target = Peer("tcp", "127.0.0.1", port)
    core.send(parse_message(sip_request()), target)
    sip.flush()
    await core.wait_for(lambda: bool(core.errors))
    assert core.errors == [target]
    assert sip.connection_count == 0


async def test_idle_connections_are_closed(core: FakeCore) -> None:
    sip = await start(core, idle_seconds=0.05)
    try:
        reader, writer = await _open(sip)
        writer.write(sip_request())
        await _read_message(reader)
        async with asyncio.timeout(WAIT):
            assert await reader.read() == b""
        await core.wait_for(lambda: bool(core.errors))
        writer.close()
        await writer.wait_closed()
    finally:
        await sip.close()


async def test_connection_limit_refuses_extra_connections(core: FakeCore) -> None:
    sip = await start(core, max_connections=1)
    try:
        r1, w1 = await _open(sip)
        w1.write(sip_request())
        await _read_message(r1)
        r2, w2 = await _open(sip)
        async with asyncio.timeout(WAIT):
            assert await r2.read() == b""
        assert sip.stats.connections_refused == 1
        for w in (w1, w2):
            w.close()
            with contextlib.suppress(ConnectionError):
                await w.wait_closed()
    finally:
        await sip.close()


async def test_close_closes_connections_and_listeners(core: FakeCore) -> None:
    sip = await start(core)
    reader, writer = await _open(sip)
    writer.write(sip_request())
    await _read_message(reader)
    contacts = sip.contacts
    await sip.close()
    async with asyncio.timeout(WAIT):
        assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    with pytest.raises(OSError):
        await asyncio.open_connection(*contacts["tcp"])
    assert not core.errors  # our own shutdown is not a peer failure
    await sip.close()  # idempotent


async def test_fixed_ports_and_tls_on_the_next_port(core: FakeCore, tls_files: TlsFiles) -> None:
    probe = await start(None)
    port = probe.contacts["udp"][1]
    await probe.close()
    try:
        sip = await start(core, port=port, tls_cert=str(tls_files.cert), tls_key=str(tls_files.key))
    except OSError:
        pytest.skip(f"port {port} or {port + 1} was taken meanwhile")
    try:
        assert sip.contacts == {
            "udp": ("127.0.0.1", port),
            "tcp": ("127.0.0.1", port),
            "tls": ("127.0.0.1", port + 1),
        }
    finally:
        await sip.close()


async def test_udp_only(core: FakeCore, udp_client: UdpClient) -> None:
    sip = await start(core, tcp=False)
    try:
        assert set(sip.contacts) == {"udp"}
        core.send(parse_message(sip_request()), Peer("tcp", "127.0.0.1", 9))
        sip.flush()
        await core.wait_for(lambda: bool(core.errors))
    finally:
        await sip.close()


# ---------------------------------------------------------------------------------------- TLS


def _client_context(tls_files: TlsFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files.cert))


async def test_tls_request_and_answer(core: FakeCore, tls_files: TlsFiles) -> None:
    sip = await start(core, tls_cert=str(tls_files.cert), tls_key=str(tls_files.key))
    try:
        host, port = sip.contacts["tls"]
        reader, writer = await asyncio.open_connection(host, port, ssl=_client_context(tls_files))
        writer.write(sip_request() + b"\r\n\r\n")
        answer = await _read_message(reader)
        assert isinstance(answer, Response) and answer.status == 200
        async with asyncio.timeout(WAIT):
            assert await reader.readexactly(2) == b"\r\n"  # the pong
        [(_, peer)] = core.received
        assert peer.transport == "tls" and peer.connection is not None
        writer.close()
        await writer.wait_closed()
        await core.wait_for(lambda: bool(core.errors))
    finally:
        await sip.close()


async def test_tls_garbage_handshake_is_dropped_quietly(core: FakeCore, tls_files: TlsFiles) -> None:
    sip = await start(core, tls_cert=str(tls_files.cert), tls_key=str(tls_files.key))
    try:
        reader, writer = await asyncio.open_connection(*sip.contacts["tls"])
        writer.write(sip_request())  # plaintext SIP to the TLS port
        async with asyncio.timeout(WAIT):
            await reader.read()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        # The listener still serves TLS.
        reader, writer = await asyncio.open_connection(*sip.contacts["tls"], ssl=_client_context(tls_files))
        writer.write(sip_request())
        assert isinstance(await _read_message(reader), Response)
        writer.close()
        await writer.wait_closed()
        assert len(core.received) == 1
    finally:
        await sip.close()


async def test_tls_outbound_verifies_the_server(tls_files: TlsFiles) -> None:
    server_core, client_core = FakeCore(), FakeCore(answer=False)
    server = await start(server_core, tls_cert=str(tls_files.cert), tls_key=str(tls_files.key))
    trusting = await start(client_core, tls_ca_file=str(tls_files.cert))
    try:
        host, port = server.contacts["tls"]
        client_core.send(parse_message(sip_request()), Peer("tls", host, port))
        trusting.flush()
        await client_core.wait_for(lambda: bool(client_core.received))
        answer, peer = client_core.received[0]
        assert isinstance(answer, Response) and answer.status == 200
        assert peer == Peer("tls", host, port, peer.connection) and peer.connection is not None
    finally:
        await trusting.close()
    # Default verification with the system CAs refuses the self-signed certificate ...
    strict_core = FakeCore(answer=False)
    strict = await start(strict_core)
    try:
        target = Peer("tls", *server.contacts["tls"])
        strict_core.send(parse_message(sip_request()), target)
        strict.flush()
        await strict_core.wait_for(lambda: bool(strict_core.errors))
        assert strict_core.errors == [target] and not strict_core.received
    finally:
        await strict.close()
    # ... and tls_verify=False accepts it.
    lax_core = FakeCore(answer=False)
    lax = await start(lax_core, tls_verify=False)
    try:
        lax_core.send(parse_message(sip_request()), Peer("tls", *server.contacts["tls"]))
        lax.flush()
        await lax_core.wait_for(lambda: bool(lax_core.received))
    finally:
        await lax.close()
        await server.close()


def test_tls_needs_cert_and_key(tmp_path: Path) -> None:
    assert not SipTransportConfig(tls_cert="a.pem").tls_enabled
    assert SipTransportConfig(tls_cert="a.pem", tls_key="a.key").tls_enabled
