"""check_exposure: an open server is allowed on loopback, or beyond it only on purpose."""

from __future__ import annotations

import pytest

from palaver.config import ConfigError, Settings
from palaver.server.exposure import check_exposure, open_exposure_warning


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_an_open_server_on_loopback_starts(host: str) -> None:
    settings = Settings(host=host)
    check_exposure(settings)
    warning = open_exposure_warning(settings)
    assert warning is not None and "loopback only" in warning


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "palaver.example.com"])
def test_an_open_server_beyond_loopback_refuses_naming_both_ways_out(host: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_exposure(Settings(host=host, port=8000))
    message = str(info.value)
    assert f"refusing to serve {host}:8000 without a key" in message
    assert "PALAVER_API_KEY" in message and "PALAVER_ALLOW_OPEN=true" in message


def test_allow_open_serves_open_on_purpose_with_a_loud_warning() -> None:
    settings = Settings(host="0.0.0.0", port=8000, allow_open=True)
    check_exposure(settings)
    assert open_exposure_warning(settings) == (
        "PALAVER_ALLOW_OPEN=true and no PALAVER_API_KEY: the server is OPEN on 0.0.0.0:8000, ANY client "
        "that can reach it may use it, its models and its tools"
    )


def test_a_keyed_server_may_bind_anything_and_warns_of_nothing() -> None:
    settings = Settings(host="0.0.0.0", api_key="sk-secret")
    check_exposure(settings)
    assert open_exposure_warning(settings) is None


@pytest.mark.parametrize("key", ["", "   "])
def test_an_empty_key_is_an_error(key: str) -> None:
    with pytest.raises(ConfigError, match="PALAVER_API_KEY is set but empty"):
        check_exposure(Settings(api_key=key))


def test_an_empty_key_in_the_environment_is_an_error_not_open() -> None:
    with pytest.raises(ConfigError, match="PALAVER_API_KEY is set but empty"):
        Settings.from_env({"PALAVER_API_KEY": ""})
