import pytest

from palaver.config import ConfigError, Settings


def test_environment_and_overrides() -> None:
    env = {"PALAVER_PORT": "9001", "PALAVER_WS_COMPRESSION": "yes", "PALAVER_BARGE_IN_THRESHOLD_BOOST": "0.2"}
    settings = Settings.from_env(env, host="0.0.0.0")
    assert settings.port == 9001 and settings.ws_compression is True
    assert settings.barge_in_threshold_boost == 0.2 and settings.host == "0.0.0.0"
    assert Settings.from_env({}).ws_compression is False


@pytest.mark.parametrize(("name", "value"), [("PALAVER_PORT", "eighty"), ("PALAVER_WS_COMPRESSION", "maybe")])
def test_bad_values_are_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
