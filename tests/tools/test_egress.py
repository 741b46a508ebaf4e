"""The egress policy, pure: which URLs and resolved addresses a server may connect to for a client."""

from __future__ import annotations

import ipaddress

import pytest

from palaver.config import ConfigError, Settings
from palaver.egress import (
    EgressPolicy,
    EgressRefused,
    address_class,
)

PUBLIC = EgressPolicy.public_only()


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def refusal(check: object, *args: object) -> str:
    with pytest.raises(EgressRefused) as caught:
        check(*args)  # type: ignore[operator]
    return str(caught.value)


# --- the default rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.254", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd00::1", "a private (unique local) address"),
        ("fc00::1", "a private (unique local) address"),
        ("fec0::1", "a private (site-local) address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%2", "a link-local address"),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("100.127.255.254", "a shared (CGNAT) address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("0.1.2.3", "a reserved or special-purpose address"),
        ("240.0.0.1", "a reserved or special-purpose address"),
        ("255.255.255.255", "a reserved or special-purpose address"),
        ("192.0.2.10", "a reserved or special-purpose address"),
        ("198.18.0.1", "a reserved or special-purpose address"),
        ("2001:db8::1", "a reserved or special-purpose address"),
        ("64:ff9b:1::a00:5", "a reserved or special-purpose address"),
        ("::ffff:127.0.0.1", "an IPv4-mapped form of 127.0.0.1, a loopback address"),
        ("::ffff:10.0.0.5", "an IPv4-mapped form of 10.0.0.5, a private address"),
        ("::ffff:169.254.169.254", "an IPv4-mapped form of 169.254.169.254, a link-local address"),
        ("2002:a00:5::1", "a 6to4 form of 10.0.0.5, a private address"),
        ("2002:7f00:1::", "a 6to4 form of 127.0.0.1, a loopback address"),
        ("64:ff9b::a9fe:a9fe", "a NAT64 form of 169.254.169.254, a link-local address"),
        ("::a00:5", "an IPv4-compatible form of 10.0.0.5, a private address"),
        ("::808:808", "a reserved or special-purpose address"),
    ],
)
def test_address_classes(address: str, kind: str) -> None:
    assert address_class(ip(address)) == kind


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",
        "100.128.0.0",
        "172.32.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses(address: str) -> None:
    assert address_class(ip(address)) is None
    PUBLIC.check_connection(address, 443, [ip(address)])


def test_a_loopback_only_server_may_connect_anywhere() -> None:
    policy = EgressPolicy.from_settings(Settings(host="127.0.0.1"))
    assert policy.open and policy.allow is None
    policy.check_url("http://127.0.0.1:9/mcp")
    policy.check_url("https://10.0.0.5/mcp")
    policy.check_connection("localhost", 80, [ip("127.0.0.1")])
    for host in ("localhost", "::1", "127.0.0.2"):
        assert EgressPolicy.from_settings(Settings(host=host)).open


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "palaver.example.com"])
def test_any_other_bind_address_means_public_only(host: str) -> None:
    policy = EgressPolicy.from_settings(Settings(host=host))
    assert not policy.open and policy.allow is None
    assert refusal(policy.check_url, "http://127.0.0.1:8000/mcp") == (
        "127.0.0.1 is a loopback address; allow it with PALAVER_MCP_ALLOW"
    )


def test_ip_literal_urls_are_refused_before_any_resolution() -> None:
    assert refusal(PUBLIC.check_url, "http://10.0.0.5/mcp") == (
        "10.0.0.5 is a private address; allow it with PALAVER_MCP_ALLOW"
    )
    assert "a link-local address" in refusal(PUBLIC.check_url, "http://169.254.169.254/latest/meta-data")
    assert "loopback" in refusal(PUBLIC.check_url, "http://[::1]:8000/mcp")
    assert "IPv4-mapped form of 127.0.0.1" in refusal(PUBLIC.check_url, "http://[::ffff:127.0.0.1]/")
    assert "unspecified" in refusal(PUBLIC.check_url, "http://0.0.0.0:8000/")
    PUBLIC.check_url("https://8.8.8.8/mcp")


def test_a_host_name_is_judged_by_every_address_it_resolves_to() -> None:
    PUBLIC.check_url("https://mcp.example.com/mcp")  # the name alone decides nothing
    PUBLIC.check_connection("mcp.example.com", 443, [ip("93.184.216.34")])
    message = refusal(PUBLIC.check_connection, "localhost", 8000, [ip("127.0.0.1")])
    assert message == (
        "localhost resolves to 127.0.0.1, which is a loopback address; allow it with PALAVER_MCP_ALLOW"
    )
    # One bad address among good ones refuses the name (a rebinding resolver returns both).
    mixed = [ip("93.184.216.34"), ip("10.0.0.5")]
    assert "10.0.0.5, which is a private address" in refusal(PUBLIC.check_connection, "x.test", 443, mixed)
    assert "resolved to no address" in refusal(PUBLIC.check_connection, "x.test", 443, [])


@pytest.mark.parametrize(
    "url",
    [
        "ftp://mcp.example.com/",
        "file:///etc/passwd",
        "ws://mcp.example.com/",
        "gopher://127.0.0.1:6379/",
        "mcp.example.com/mcp",
    ],
)
@pytest.mark.parametrize("policy", [EgressPolicy.allow_all(), PUBLIC], ids=["open", "public"])
def test_only_http_and_https(url: str, policy: EgressPolicy) -> None:
    assert "is not allowed; use http or https" in refusal(policy.check_url, url)


def test_a_url_without_a_host_is_refused() -> None:
    assert "has no host" in refusal(EgressPolicy.allow_all().check_url, "http:///mcp")


# --- an explicit allow list ------------------------------------------------------------


def allow(entries: str, *, loopback_only: bool = False) -> EgressPolicy:
    return EgressPolicy.parse(entries, loopback_only=loopback_only)


def test_an_allow_list_replaces_the_default_even_on_loopback() -> None:
    policy = allow("10.0.0.0/8", loopback_only=True)
    assert not policy.open
    assert "8.8.8.8 port 443 is not listed in PALAVER_MCP_ALLOW" in refusal(
        policy.check_url, "https://8.8.8.8/"
    )
    policy.check_url("http://10.1.2.3:8080/mcp")
    assert "127.0.0.1 port 80 is not listed" in refusal(policy.check_url, "http://127.0.0.1/")


def test_cidr_entries_v4_and_v6_judge_resolved_addresses() -> None:
    policy = allow("10.0.0.0/8, fd00::/8")
    policy.check_connection("mcp.internal", 443, [ip("10.9.8.7")])
    policy.check_connection("mcp.internal", 443, [ip("fd12::1")])
    policy.check_connection("mcp.internal", 443, [ip("::ffff:10.0.0.1")])  # mapped form of a listed address
    policy.check_url("http://[fd00::5]:8000/mcp")
    message = refusal(policy.check_connection, "mcp.internal", 443, [ip("10.0.0.1"), ip("192.168.0.1")])
    assert message == (
        "mcp.internal resolves to 192.168.0.1, which is not listed in PALAVER_MCP_ALLOW;"
        " add it to PALAVER_MCP_ALLOW"
    )
    assert "fe80::1 port 80 is not listed" in refusal(policy.check_url, "http://[fe80::1]/")


def test_host_port_entries() -> None:
    policy = allow("127.0.0.1:8080, mcp.internal, tools.internal:8443, [::1]:9000")
    policy.check_url("http://127.0.0.1:8080/mcp")
    policy.check_connection("127.0.0.1", 8080, [ip("127.0.0.1")])
    assert "127.0.0.1 port 8081 is not listed" in refusal(policy.check_url, "http://127.0.0.1:8081/mcp")
    # A listed name, on any port, whatever it resolves to (the operator trusts that name).
    policy.check_url("http://mcp.internal:1234/x")
    policy.check_connection("MCP.Internal.", 1234, [ip("10.0.0.5")])
    policy.check_url("https://tools.internal:8443/mcp")
    # Another port of that name is judged by its addresses (this list has address entries).
    policy.check_url("https://tools.internal/mcp")
    message = refusal(policy.check_connection, "tools.internal", 443, [ip("10.0.0.5")])
    assert message.startswith("tools.internal resolves to 10.0.0.5, which is not listed")
    policy.check_url("http://[::1]:9000/")
    assert "port 9001 is not listed" in refusal(policy.check_url, "http://[::1]:9001/")
    # With names only, a name not listed is refused at once: resolving cannot make it allowed.
    names = allow("mcp.internal, tools.internal:8443")
    assert "tools.internal port 443 is not listed" in refusal(names.check_url, "https://tools.internal/mcp")
    assert "other.example port 443 is not listed" in refusal(names.check_url, "https://other.example/")
    # A listed address is judged by address: another name resolving to it is allowed on that port.
    policy.check_connection("alias.test", 8080, [ip("127.0.0.1")])
    assert "is not listed" in refusal(policy.check_connection, "alias.test", 8081, [ip("127.0.0.1")])


def test_a_bare_address_entry_is_that_address_on_any_port() -> None:
    policy = allow("192.168.1.10, fd00::7")
    policy.check_url("http://192.168.1.10:1/")
    policy.check_url("http://[fd00::7]:65535/")
    assert "192.168.1.11" in refusal(policy.check_url, "http://192.168.1.11/")


def test_url_prefix_entries() -> None:
    policy = allow("https://mcp.example.com/v1/, http://127.0.0.1:9000/tools")
    policy.check_url("https://mcp.example.com/v1/")
    policy.check_url("https://mcp.example.com/v1")  # the same segment, without its slash
    policy.check_url("https://mcp.example.com/v1/mcp?session=1")
    policy.check_url("https://MCP.example.com:443/v1/mcp")
    policy.check_url("http://127.0.0.1:9000/tools")
    policy.check_url("http://127.0.0.1:9000/tools/mcp")
    for outside in (
        "https://mcp.example.com/v2/mcp",
        "https://mcp.example.com/v10/mcp",
        "https://mcp.example.com/",
        "http://127.0.0.1:9000/toolsmith",
        "http://127.0.0.1:9000/",
    ):
        assert "is outside the URL prefixes PALAVER_MCP_ALLOW lists" in refusal(policy.check_url, outside)
    assert "not listed" in refusal(policy.check_url, "http://mcp.example.com/v1/mcp")  # another scheme
    assert "not listed" in refusal(policy.check_url, "https://mcp.example.com:8443/v1/mcp")  # another port
    # Its connections are trusted by name, whatever it resolves to.
    policy.check_connection("mcp.example.com", 443, [ip("10.0.0.5")])
    assert "not listed" in refusal(policy.check_connection, "mcp.example.com", 80, [ip("10.0.0.5")])


def test_a_prefix_path_is_enforced_even_beside_a_cidr() -> None:
    policy = allow("https://mcp.example.com/v1/, 10.0.0.0/8")
    assert "outside the URL prefixes" in refusal(policy.check_url, "https://mcp.example.com/admin")


def test_the_query_never_appears_in_a_refusal() -> None:
    message = refusal(
        allow("https://mcp.example.com/v1/").check_url, "https://mcp.example.com/x?api_key=SECRET"
    )
    assert "SECRET" not in message and "https://mcp.example.com/x?…" in message


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("10.0.0.5/8", "has host bits set; did you mean 10.0.0.0/8?"),
        ("10.0.0.0/33", "is not a valid CIDR"),
        ("fd00::/129", "is not a valid CIDR"),
        ("ftp://mcp.example.com/", "has a scheme other than http or https"),
        ("http://user:pw@mcp.example.com/", "has userinfo"),
        ("http://mcp.example.com/?key=1", "has a query or fragment"),
        ("http://mcp.example.com/#x", "has a query or fragment"),
        ("http:///v1", "has no host"),
        ("http://mcp.example.com:99999/", "is not a valid URL prefix"),
        ("mcp.example.com:0", "has a port that is not a number from 1 to 65535"),
        ("mcp.example.com:http", "has a port that is not a number from 1 to 65535"),
        ("mcp.example.com:", "has a port that is not a number from 1 to 65535"),
        ("[::1", "has an unclosed '['"),
        ("[::1]x", "has text after ']'"),
        ("[mcp.example.com]:80", "has brackets around something that is not an IPv6 address"),
        ("mcp example", "is not a URL prefix, host[:port] or CIDR"),
        ("*.example.com", "is not a URL prefix, host[:port] or CIDR"),
    ],
)
def test_a_bad_entry_is_a_config_error_naming_it(entry: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        EgressPolicy.from_settings(Settings(mcp_allow=f"10.1.0.0/16, {entry}"))
    assert str(caught.value).startswith(f"PALAVER_MCP_ALLOW: entry {entry!r} ")
    assert why in str(caught.value)


def test_an_allow_list_with_no_entry_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="PALAVER_MCP_ALLOW lists no entry"):
        EgressPolicy.parse(" , ", loopback_only=True)


def test_an_unset_allow_list_from_the_environment() -> None:
    assert EgressPolicy.from_settings(Settings.from_env({"PALAVER_HOST": "0.0.0.0"})).allow is None
    parsed = EgressPolicy.from_settings(
        Settings.from_env({"PALAVER_HOST": "0.0.0.0", "PALAVER_MCP_ALLOW": "10.0.0.0/8,mcp.internal:443"})
    )
    assert parsed.allow is not None and len(parsed.allow) == 2


def test_describe_names_the_rule() -> None:
    assert "any http(s) URL" in EgressPolicy.allow_all().describe()
    assert "public addresses only" in PUBLIC.describe()
    assert "only what PALAVER_MCP_ALLOW lists (2 entries)" in allow("10.0.0.0/8, a.test").describe()


def test_the_public_names_of_the_module() -> None:
    import palaver.egress

    assert sorted(palaver.egress.__all__) == [
        "EgressNetworkBackend",
        "EgressPolicy",
        "EgressRefused",
        "EgressTransport",
        "IPAddress",
        "address_class",
    ]
    assert issubclass(EgressRefused, palaver.errors.PalaverError)
