"""Static agents: loaded from TOML or JSON, validated at startup by the session.update rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from palaver.calls.agents import PHONE_INSTRUCTIONS, Agents, load_agents
from palaver.config import ConfigError, Settings
from palaver.server.app import create_app

TOML = """
[default]
instructions = "Front desk."

["+14155550123"]
instructions = "Sales line."
audio.output.voice = "marin"
audio.input.turn_detection = { type = "server_vad", silence_duration_ms = 300 }

[support]
model = "gpt-realtime-mini"
tools = [{ type = "function", name = "ticket", description = "Open one", parameters = { type = "object" } }]
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_no_file_means_the_builtin_phone_assistant() -> None:
    agents = load_agents(None)
    agent = agents.match("anything")
    assert agent is not None and agent.name == "default"
    config = agent.session_config(max_seconds=60)
    assert config.instructions == PHONE_INSTRUCTIONS and config.id.startswith("sess_")
    assert config.id != agent.session_config(max_seconds=60).id  # a fresh session per call


def test_toml_agents_by_dialled_number_user_part_and_default(tmp_path: Path) -> None:
    agents = load_agents(write(tmp_path, "agents.toml", TOML))
    assert sorted(agents.names()) == ["+14155550123", "default", "support"]
    sales = agents.match("+14155550123")
    assert sales is not None
    config = sales.session_config(max_seconds=60)
    assert config.instructions == "Sales line." and config.audio.output.voice == "marin"
    assert config.audio.input.turn_detection is not None
    assert config.audio.input.turn_detection.type == "server_vad"
    support = agents.match("support")
    assert support is not None
    config = support.session_config(max_seconds=60)
    assert config.model == "gpt-realtime-mini" and [t.name for t in config.tools] == ["ticket"]
    fallback = agents.match("2000")
    assert fallback is not None and fallback.name == "default"


def test_json_agents_and_lookup_without_plus(tmp_path: Path) -> None:
    path = write(tmp_path, "agents.json", json.dumps({"14155550123": {"instructions": "No plus."}}))
    agents = load_agents(path)
    agent = agents.match("+14155550123")
    assert agent is not None and agent.name == "14155550123"
    assert agents.match("999") is None  # no default in the file: nobody answers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[sales]\naudio.output.voice = 7\n", r"agent 'sales', field 'audio.output.voice'"),
        ('[sales]\ncolour = "red"\n', r"agent 'sales', field 'colour'"),
        ('[sales]\ntype = "transcription"\n', r"agent 'sales', field 'type'"),
        ('[default]\noutput_modalities = ["smell"]\n', r"agent 'default', field 'output_modalities\[0\]'"),
        ('sales = "hello"\n', r"agent 'sales' must be a table"),
        ("[sales\n", r"not valid TOML"),
        ("", r"no agents"),
    ],
)
def test_mistakes_stop_startup_naming_agent_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "agents.toml", text)
    with pytest.raises(ConfigError, match=expected):
        load_agents(path)
    with pytest.raises(ConfigError, match="PALAVER_SIP_AGENTS"):
        create_app(Settings(sip_agents=path))


def test_unreadable_or_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_agents(str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"use \.toml or \.json"):
        load_agents(write(tmp_path, "agents.yaml", "default: {}"))
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_agents(write(tmp_path, "agents.json", "{"))
    with pytest.raises(ConfigError, match="top level"):
        load_agents(write(tmp_path, "agents.json", "[]"))


def test_builtin_is_an_agents_object() -> None:
    assert isinstance(Agents.builtin(), Agents)
