"""``PALAVER_SIP_*`` and ``PALAVER_RTP_*`` settings, read and checked: what SIP listens on, who may call.

``check_sip_settings`` is the open-relay guard: SIP bound to anything but loopback must name the
networks calls come from (``sip_allow``) or the credentials callers present
(``sip_credentials``), so a fresh install never answers strangers' calls on a public address.
"""

from __future__ import annotations

import ipaddress
import os

from palaver.config import ConfigError, Settings, is_loopback_host
from palaver.sip.ua_policy import Network
from palaver.transports.sip import SipTransportConfig

__all__ = [
    "check_sip_settings",
    "is_loopback_host",
    "parse_sip_allow",
    "parse_sip_credentials",
    "rtp_port_range",
    "sip_transport_config",
    "trunk_credentials",
]


def parse_sip_allow(text: str | None) -> tuple[Network, ...] | None:
    """``10.0.0.0/8, 192.168.1.7`` → networks (a bare address is a /32 or /128); unset → None."""
    if text is None or not text.strip():
        return None
    networks: list[Network] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"PALAVER_SIP_ALLOW: {item!r} is not an IP network (use e.g. 10.0.0.0/8,192.168.1.0/24)"
            ) from None
    if not networks:
        raise ConfigError("PALAVER_SIP_ALLOW is set but names no network")
    return tuple(networks)


def parse_sip_credentials(text: str | None) -> dict[str, str] | None:
    """``alice:secret,bob:pa:ss`` → {user: password} (split at each entry's first colon); unset → None.

    Commas separate entries, so a password cannot contain one.
    """
    if text is None or not text.strip():
        return None
    credentials: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        user, colon, password = item.partition(":")
        user = user.strip()
        if not colon or not user or not password:
            raise ConfigError(
                "PALAVER_SIP_CREDENTIALS: each entry must be user:password "
                f"(got {user or item[:1]!r}… without a user or a password)"
            )
        if user in credentials:
            raise ConfigError(f"PALAVER_SIP_CREDENTIALS: user {user!r} is listed twice")
        credentials[user] = password
    if not credentials:
        raise ConfigError("PALAVER_SIP_CREDENTIALS is set but names no user")
    return credentials


def trunk_credentials(settings: Settings) -> tuple[str, str] | None:
    """(user, password) for a trunk's digest challenge, or None; one without the other is an error."""
    user, password = settings.sip_trunk_user, settings.sip_trunk_password
    if not user and not password:
        return None
    if not user or not password:
        raise ConfigError(
            "PALAVER_SIP_TRUNK_USER and PALAVER_SIP_TRUNK_PASSWORD go together: set both or neither"
        )
    return user, password


def rtp_port_range(settings: Settings) -> tuple[int, int]:
    """(min, max) RTP ports; (0, 0) means any free ports."""
    lo, hi = settings.rtp_port_min, settings.rtp_port_max
    if (lo, hi) == (0, 0):
        return lo, hi
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
        raise ConfigError(f"PALAVER_RTP_PORT_MIN/MAX={lo}/{hi}: ports must lie in 1..65535 (or both be 0)")
    if lo + lo % 2 + 1 > hi:
        raise ConfigError(
            f"PALAVER_RTP_PORT_MIN/MAX={lo}/{hi}: the range must hold an even port and the next (RTP, RTCP)"
        )
    return lo, hi


def check_sip_settings(settings: Settings) -> None:
    """Raise ConfigError for SIP settings Palaver cannot or must not run with."""
    if not settings.sip_enabled:
        return
    for name in ("sip_port", "sip_tls_port"):
        port = getattr(settings, name)
        if port is not None and not 0 <= port <= 65535:
            raise ConfigError(f"PALAVER_{name.upper()}={port} is not a port number (0..65535)")
    if settings.sip_tls_port is None and settings.sip_port == 65535:
        raise ConfigError("PALAVER_SIP_PORT=65535 leaves no next port for TLS; set PALAVER_SIP_TLS_PORT")
    if bool(settings.sip_tls_cert) != bool(settings.sip_tls_key):
        raise ConfigError(
            "PALAVER_SIP_TLS_CERT and PALAVER_SIP_TLS_KEY go together: set both for SIP over TLS"
        )
    for name in ("sip_tls_cert", "sip_tls_key"):
        path = getattr(settings, name)
        if path and not os.path.isfile(path):
            raise ConfigError(f"PALAVER_{name.upper()}={path}: no such file")
    allow = parse_sip_allow(settings.sip_allow)
    credentials = parse_sip_credentials(settings.sip_credentials)
    trunk_credentials(settings)
    rtp_port_range(settings)
    if not is_loopback_host(settings.sip_host) and allow is None and credentials is None:
        raise ConfigError(
            f"PALAVER_SIP_HOST={settings.sip_host} takes calls from beyond this machine, so say from whom: "
            "set PALAVER_SIP_ALLOW to the networks of your PBX or trunk (e.g. 10.0.0.0/8,203.0.113.7) "
            "and/or PALAVER_SIP_CREDENTIALS to the user:password pairs callers must present "
            "(or set PALAVER_SIP_ENABLED=false)"
        )


def sip_transport_config(settings: Settings) -> SipTransportConfig:
    """The transport's configuration from checked settings (call ``check_sip_settings`` first)."""
    return SipTransportConfig(
        host=settings.sip_host,
        port=settings.sip_port,
        tls_port=settings.sip_tls_port,
        tls_cert=settings.sip_tls_cert,
        tls_key=settings.sip_tls_key,
        tls_verify=settings.sip_tls_verify,
        advertise_host=settings.sip_advertise_host,
    )
