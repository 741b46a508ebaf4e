"""The egress policy where connections are made: real listeners on 127.0.0.1 count what reaches them."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import httpcore2
import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.support.mcp_server import McpTestServer

from palaver.egress import EgressPolicy, EgressRefused, EgressTransport
from palaver.protocol.tools import McpTool
from palaver.redact import pii
from palaver.tools.mcp import McpError, McpManager, McpServerConnection

PUBLIC = EgressPolicy.public_only()


class Listener:
    """A TCP listener on 127.0.0.1 that counts accepted connections and answers one canned response."""

    def __init__(
        self, response: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    ) -> None:
        self.response = response
        self.accepted = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> Listener:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            async with asyncio.timeout(5):
                self.requests.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(self.response)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    server = await Listener().start()
    try:
        yield server
    finally:
        await server.stop()


def client(policy: EgressPolicy, **kwargs: object) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=EgressTransport(policy), timeout=5, **kwargs)  # type: ignore[arg-type]


# --- refused connections are never made ----------------------------------------------------


async def test_a_refused_address_never_gets_a_connection(listener: Listener) -> None:
    async with client(PUBLIC) as http:
        with pytest.raises(EgressRefused, match=r"^127\.0\.0\.1 is a loopback address; allow it with"):
            await http.get(f"http://127.0.0.1:{listener.port}/mcp")
        # A name that resolves to loopback is refused after resolution, before connecting.
        with pytest.raises(EgressRefused, match=r"^localhost resolves to .*, which is a loopback address"):
            await http.get(f"http://localhost:{listener.port}/mcp")
        # Numeric spellings the resolver turns into 127.0.0.1 are judged by what they resolve to.
        for spelling in ("2130706433", "0x7f.1", "127.1"):
            with pytest.raises(EgressRefused, match=r"resolves to 127\.0\.0\.1, which is a loopback address"):
                await http.get(f"http://{spelling}:{listener.port}/mcp")
    await asyncio.sleep(0.05)
    assert listener.accepted == 0


async def test_an_allowed_address_is_connected(listener: Listener) -> None:
    policy = EgressPolicy.parse(f"127.0.0.1:{listener.port}", loopback_only=False)
    async with client(policy) as http:
        response = await http.get(f"http://127.0.0.1:{listener.port}/mcp")
    assert (response.status_code, response.text) == (200, "ok")
    assert listener.accepted == 1


class Recording(httpcore2.AsyncNetworkBackend):
    """The real anyio backend, noting which host each connection was asked for."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self._real = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        self.hosts.append(host)
        return await self._real.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


async def test_the_connection_goes_to_the_checked_address_not_a_new_lookup(listener: Listener) -> None:
    """No rebinding window: the socket is opened to the address that was checked, never the name."""
    recording = Recording()
    policy = EgressPolicy.parse("127.0.0.0/8, ::1", loopback_only=False)
    async with httpx2.AsyncClient(transport=EgressTransport(policy, inner=recording), timeout=5) as http:
        response = await http.get(f"http://localhost:{listener.port}/")
    assert response.status_code == 200
    assert recording.hosts and all(ipaddress.ip_address(host).is_loopback for host in recording.hosts)
    assert listener.requests[0].splitlines()[1].lower() == f"host: localhost:{listener.port}".encode()


async def test_a_redirect_to_a_refused_address_is_checked_on_its_own_hop() -> None:
    refused = await Listener().start()
    allowed = await Listener(
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:%d/mcp\r\nContent-Length: 0\r\n\r\n"
        % refused.port
    ).start()
    try:
        policy = EgressPolicy.parse(f"127.0.0.1:{allowed.port}", loopback_only=False)
        async with client(policy, follow_redirects=True) as http:
            with pytest.raises(EgressRefused, match=f"127.0.0.1 port {refused.port} is not listed"):
                await http.get(f"http://127.0.0.1:{allowed.port}/mcp")
        await asyncio.sleep(0.05)
        assert (allowed.accepted, refused.accepted) == (1, 0)
    finally:
        await allowed.stop()
        await refused.stop()


async def test_unix_sockets_are_refused(tmp_path: Path) -> None:
    backend = EgressTransport(EgressPolicy.allow_all()).backend
    with pytest.raises(EgressRefused, match="unix sockets"):
        await backend.connect_unix_socket(str(tmp_path / "sock"))


# --- TLS still names the host -----------------------------------------------------------


def _self_signed(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    trusting = ssl.create_default_context(cafile=str(cert_path))
    return server, trusting


async def test_tls_verifies_the_host_name_though_the_socket_was_opened_to_an_address(tmp_path: Path) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path, "localhost")
    names: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc,func-returns-value]
    tls = await Listener().start(ssl_context=server_ctx)
    try:
        recording = Recording()
        policy = EgressPolicy.parse("127.0.0.0/8, ::1", loopback_only=False)
        transport = EgressTransport(policy, verify=client_ctx, inner=recording)
        async with httpx2.AsyncClient(transport=transport, timeout=5) as http:
            response = await http.get(f"https://localhost:{tls.port}/")
            assert response.status_code == 200
            # The certificate names localhost, not 127.0.0.1: verification used the name.
            with pytest.raises(httpx2.ConnectError, match=r"(?i)certificate|hostname|IP address mismatch"):
                await http.get(f"https://127.0.0.1:{tls.port}/")
        assert names[0] == "localhost"
        assert all(ipaddress.ip_address(host).is_loopback for host in recording.hosts)
    finally:
        await tls.stop()


# --- through the MCP client -------------------------------------------------------------


def mcp(url: str, **fields: object) -> McpTool:
    return McpTool(server_label="guarded", server_url=url, **fields)  # type: ignore[arg-type]


async def test_an_mcp_server_url_refused_by_the_policy_is_never_connected(listener: Listener) -> None:
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(
            mcp(f"http://127.0.0.1:{listener.port}/mcp?api_key=SECRET"), timeout=5, egress=PUBLIC
        )
    error = caught.value
    assert error.refused and error.kind == "protocol_error"
    assert error.message == (
        "MCP server 'guarded': server_url refused by the egress policy: 127.0.0.1 is a loopback address;"
        " allow it with PALAVER_MCP_ALLOW"
    )
    # A host name resolving to loopback: refused where the connection would be made.
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(mcp(f"http://localhost:{listener.port}/mcp"), timeout=5, egress=PUBLIC)
    assert caught.value.refused
    assert "localhost resolves to" in caught.value.message and "a loopback address" in caught.value.message
    await asyncio.sleep(0.05)
    assert listener.accepted == 0


async def test_the_manager_fails_that_server_only_with_the_reason(listener: Listener) -> None:
    manager = McpManager(egress=PUBLIC, open_timeout=5)
    try:
        (result,) = await manager.sync([mcp(f"http://localhost:{listener.port}/mcp")])
    finally:
        await manager.aclose()
    assert result.error is not None and result.error.refused and result.tools is None
    assert "server_url refused by the egress policy" in result.error.message
    assert listener.accepted == 0


async def test_an_mcp_redirect_to_a_refused_address_is_not_followed() -> None:
    refused = await Listener().start()
    allowed = await Listener(
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:%d/mcp\r\nContent-Length: 0\r\n\r\n"
        % refused.port
    ).start()
    try:
        policy = EgressPolicy.parse(f"127.0.0.1:{allowed.port}", loopback_only=False)
        with pytest.raises(McpError):
            await McpServerConnection.open(
                mcp(f"http://127.0.0.1:{allowed.port}/mcp"), timeout=5, egress=policy
            )
        await asyncio.sleep(0.05)
        assert allowed.accepted >= 1 and refused.accepted == 0
    finally:
        await allowed.stop()
        await refused.stop()


@pytest.mark.parametrize(
    "header",
    [
        "Host",
        "cookie",
        "Connection",
        "Content-Length",
        "Transfer-Encoding",
        "Upgrade",
        "TE",
        "Trailer",
        "Keep-Alive",
        "Proxy-Authorization",
        "Proxy-Connection",
    ],
)
async def test_a_connection_defining_header_refuses_the_tool_before_connecting(
    listener: Listener, header: str
) -> None:
    config = mcp(f"http://127.0.0.1:{listener.port}/mcp", headers={"X-Tenant": "a", header: "evil"})
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(config, timeout=5, egress=EgressPolicy.allow_all())
    assert caught.value.refused
    assert f"header {header!r} is not forwarded" in caught.value.message
    assert listener.accepted == 0


@pytest.mark.parametrize(("name", "value"), [("X-Bad Name", "v"), ("X-Split", "a\r\nHost: evil"), ("", "v")])
async def test_a_malformed_header_refuses_the_tool(listener: Listener, name: str, value: str) -> None:
    config = mcp(f"http://127.0.0.1:{listener.port}/mcp", headers={name: value})
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(config, timeout=5, egress=EgressPolicy.allow_all())
    assert caught.value.refused
    assert listener.accepted == 0


async def test_sent_headers_are_the_tools_own_and_its_authorization(listener: Listener) -> None:
    """What reaches the server: the explicit headers and the bearer token, nothing the client forged."""
    config = mcp(
        f"http://127.0.0.1:{listener.port}/mcp", headers={"X-Tenant": "palaver"}, authorization="tok"
    )
    with pytest.raises(McpError):  # the canned "ok" is no MCP answer
        await McpServerConnection.open(config, timeout=5, egress=EgressPolicy.allow_all())
    head = listener.requests[0].decode().lower()
    assert "\r\nx-tenant: palaver\r\n" in head and "\r\nauthorization: bearer tok\r\n" in head
    assert f"\r\nhost: 127.0.0.1:{listener.port}\r\n" in head and "cookie" not in head


async def test_the_sse_transport_is_checked_too(listener: Listener) -> None:
    with pytest.raises(McpError) as caught:
        await McpServerConnection.open(mcp(f"http://localhost:{listener.port}/sse"), timeout=5, egress=PUBLIC)
    assert caught.value.refused and "a loopback address" in caught.value.message
    assert listener.accepted == 0


async def test_a_server_urls_query_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """httpx2 logs every request URL at info level; the MCP client's loggers show it without its query."""
    with McpTestServer() as server:
        caplog.set_level(logging.DEBUG)
        config = mcp(f"{server.url}?api_key=SECRET-KEY", headers={"X-Tenant": "t"})
        conn = await McpServerConnection.open(config, timeout=10, egress=EgressPolicy.allow_all())
        try:
            assert await conn.list_tools(timeout=10)
        finally:
            await conn.aclose()
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx2"]
    hidden = pii("api_key=SECRET-KEY")  # the query as every default log line shows it
    assert any(f"POST {server.url}?{hidden}" in line for line in requests), requests
    assert "SECRET-KEY" not in caplog.text
