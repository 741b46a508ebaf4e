"""Safe exposure: a server reachable beyond loopback must ask for a key, or be open on purpose.

``check_exposure`` runs before anything listens (``palaver serve`` and ``create_app``). Bound to
loopback only, a server with no key is open to local clients, as a developer expects. Bound to
any other address (``0.0.0.0``, a LAN address, a host name) with no ``PALAVER_API_KEY`` it refuses
to start and names both ways out; ``PALAVER_ALLOW_OPEN=true`` serves open on purpose, and
``open_exposure_warning`` is the line logged loudly at startup then.
"""

from __future__ import annotations

from palaver.config import ConfigError, Settings, is_loopback_host

__all__ = ["check_exposure", "open_exposure_warning"]


def check_exposure(settings: Settings) -> None:
    """Raise ``ConfigError`` for an open server on a non-loopback address not opened on purpose."""
    if settings.api_key is not None and not settings.api_key.strip():
        raise ConfigError("PALAVER_API_KEY is set but empty: give it a key, or unset it")
    if settings.api_key is None and not is_loopback_host(settings.host) and not settings.allow_open:
        raise ConfigError(
            f"refusing to serve {settings.host}:{settings.port} without a key: anyone who can reach it "
            "could use it. Set PALAVER_API_KEY to a secret clients must present, or set "
            "PALAVER_ALLOW_OPEN=true to serve open on purpose (or bind 127.0.0.1)."
        )


def open_exposure_warning(settings: Settings) -> str | None:
    """The startup warning for an open server, or None for a keyed one."""
    if settings.api_key is not None:
        return None
    if is_loopback_host(settings.host):
        return "PALAVER_API_KEY is not set: the server is open to clients on this machine (loopback only)"
    return (
        f"PALAVER_ALLOW_OPEN=true and no PALAVER_API_KEY: the server is OPEN on {settings.host}:"
        f"{settings.port}, ANY client that can reach it may use it, its models and its tools"
    )
