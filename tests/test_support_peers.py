"""A missing real peer fails the run under CI=true and is skipped, with how to install it, elsewhere."""

from __future__ import annotations

import pytest

from tests.support.peers import missing_peer
from tests.support.sip_peers import require_binary


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_under_ci_a_missing_peer_fails(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="sipp is missing: apt-get install sip-tester"):
        missing_peer("sipp", "apt-get install sip-tester")


@pytest.mark.parametrize("value", [None, "", "false"])
def test_outside_ci_a_missing_peer_is_skipped_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="sipp is missing: apt-get install sip-tester"):
        missing_peer("sipp", "apt-get install sip-tester")


def test_a_binary_not_on_path_names_its_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="apt-get install baresip-core"):
        require_binary("baresip")
