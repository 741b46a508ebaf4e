"""SIP settings: parsing, and the guard that keeps a fresh install from taking strangers' calls."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from palaver.config import ConfigError, Settings
from palaver.transports.sip_settings import (
    check_sip_settings,
    is_loopback_host,
    parse_sip_allow,
    parse_sip_credentials,
    rtp_port_range,
    sip_transport_config,
    trunk_credentials,
)


def settings(**env: str) -> Settings:
    return Settings.from_env({f"PALAVER_{k.upper()}": v for k, v in env.items()})


def test_defaults_are_loopback_on_5060_and_pass_the_check() -> None:
    s = Settings()
    assert (s.sip_enabled, s.sip_host, s.sip_port, s.sip_tls_port) == (True, "127.0.0.1", 5060, None)
    assert (s.rtp_port_min, s.rtp_port_max) == (40000, 49999)
    check_sip_settings(s)
    config = sip_transport_config(s)
    assert (config.host, config.port, config.tls_enabled, config.tls_verify) == (
        "127.0.0.1",
        5060,
        False,
        True,
    )


def test_settings_come_from_the_environment() -> None:
    s = settings(
        sip_host="0.0.0.0",
        sip_port="5080",
        sip_tls_port="5081",
        sip_allow="10.0.0.0/8",
        sip_tls_verify="false",
        sip_enabled="true",
        rtp_port_min="0",
        rtp_port_max="0",
    )
    assert (s.sip_host, s.sip_port, s.sip_tls_port, s.sip_tls_verify) == ("0.0.0.0", 5080, 5081, False)
    check_sip_settings(s)
    assert rtp_port_range(s) == (0, 0)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.1.2.3", "sip.example.com"])
def test_binding_beyond_loopback_without_allow_or_credentials_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="PALAVER_SIP_ALLOW") as info:
        check_sip_settings(Settings(sip_host=host))
    assert "PALAVER_SIP_CREDENTIALS" in str(info.value)


@pytest.mark.parametrize(
    "extra", [{"sip_allow": "192.168.1.0/24"}, {"sip_credentials": "pbx:s3cret"}, {"sip_enabled": False}]
)
def test_an_allow_list_or_credentials_or_no_sip_makes_a_public_bind_acceptable(
    extra: dict[str, object],
) -> None:
    check_sip_settings(Settings(sip_host="0.0.0.0", **extra))  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)
    check_sip_settings(Settings(sip_host=host))


def test_allow_list_parsing() -> None:
    assert parse_sip_allow(None) is None
    assert parse_sip_allow(" ") is None
    assert parse_sip_allow("10.0.0.0/8, 192.168.1.7,2001:db8::/32") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert parse_sip_allow("10.1.2.3/8") == (ipaddress.ip_network("10.0.0.0/8"),)
    with pytest.raises(ConfigError, match="not an IP network"):
        parse_sip_allow("10.0.0.0/8,example.com")
    with pytest.raises(ConfigError, match="names no network"):
        parse_sip_allow(",")


def test_credentials_parsing() -> None:
    assert parse_sip_credentials(None) is None
    assert parse_sip_credentials("alice:secret, bob:pa:ss") == {"alice": "secret", "bob": "pa:ss"}
    for bad in ("alice", "alice:", ":secret", "alice:a,alice:b"):
        with pytest.raises(ConfigError, match="PALAVER_SIP_CREDENTIALS"):
            parse_sip_credentials(bad)
    with pytest.raises(ConfigError):
        check_sip_settings(Settings(sip_credentials="nopassword"))


def test_trunk_credentials_go_together() -> None:
    assert trunk_credentials(Settings()) is None
    assert trunk_credentials(Settings(sip_trunk_user="u", sip_trunk_password="p")) == ("u", "p")
    with pytest.raises(ConfigError, match="set both"):
        check_sip_settings(Settings(sip_trunk_user="u"))


def test_tls_needs_both_files_and_they_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="go together"):
        check_sip_settings(Settings(sip_tls_cert="x.pem"))
    with pytest.raises(ConfigError, match="no such file"):
        check_sip_settings(Settings(sip_tls_cert=str(tmp_path / "a"), sip_tls_key=str(tmp_path / "b")))
    (tmp_path / "a").write_text("cert")
    (tmp_path / "b").write_text("key")
    s = Settings(sip_tls_cert=str(tmp_path / "a"), sip_tls_key=str(tmp_path / "b"))
    check_sip_settings(s)
    assert sip_transport_config(s).tls_enabled


@pytest.mark.parametrize(
    ("lo", "hi"), [(40000, 40000), (40001, 40002), (0, 40000), (50000, 40000), (40000, 70000)]
)
def test_bad_rtp_ranges(lo: int, hi: int) -> None:
    with pytest.raises(ConfigError, match="PALAVER_RTP_PORT"):
        check_sip_settings(Settings(rtp_port_min=lo, rtp_port_max=hi))


def test_rtp_range_with_one_pair() -> None:
    assert rtp_port_range(Settings(rtp_port_min=40001, rtp_port_max=40003)) == (40001, 40003)


@pytest.mark.parametrize(("name", "value"), [("sip_port", 70000), ("sip_tls_port", -1)])
def test_bad_ports(name: str, value: int) -> None:
    with pytest.raises(ConfigError, match=name.upper()):
        check_sip_settings(Settings(**{name: value}))  # type: ignore[arg-type]
