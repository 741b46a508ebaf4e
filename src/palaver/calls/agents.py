"""Static agents: which session a call gets when no webhook decides, chosen by the number dialled.

``PALAVER_SIP_AGENTS`` names a TOML or JSON file whose top-level keys are dialled numbers or
SIP user parts (``"+14155550123"``, ``"1000"``, ``"sales"``) or ``default``; each value is a
partial realtime session config, exactly what a ``session.update`` would carry (``type`` may be
left out)::

    [default]
    instructions = "You are the front desk of Example Ltd. Keep answers short."
    audio.output.voice = "marin"

    [sales]
    instructions = "You are the sales line."
    tools = [{ type = "function", name = "quote", description = "A price quote", parameters = {} }]

Every agent is validated at startup by the same rules as ``session.update``, so a mistake stops
``palaver serve`` with the agent and field named instead of failing a call later. Lookup: the
dialled number as given, then without a leading ``+``, then ``default``. With no file there is
one built-in default agent, so an unconfigured server answers a softphone call; with a file
and no ``default``, a call to an unlisted number finds no agent (and is declined 404).
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from palaver.config import DEFAULT_MODEL, ConfigError
from palaver.protocol.errors import ProtocolError
from palaver.protocol.session_config import RealtimeSessionConfig, new_realtime_session

DEFAULT_AGENT = "default"
PHONE_INSTRUCTIONS = "You are Palaver, a helpful voice assistant answering a phone call. Keep answers short."


@dataclass(frozen=True)
class Agent:
    name: str
    #: The partial session config, as validated (applied over the server defaults per call).
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        model = self.overrides.get("model")
        return model if isinstance(model, str) else DEFAULT_MODEL

    def session_config(self, *, max_seconds: float) -> RealtimeSessionConfig:
        """A fresh session config (new ``sess_`` id) for one call."""
        expires_at = int(time.time() + max_seconds)
        return new_realtime_session(
            self.model, expires_at=expires_at, overrides=dict(self.overrides), prefix=""
        )


BUILTIN_DEFAULT = Agent(DEFAULT_AGENT, {"instructions": PHONE_INSTRUCTIONS})


class Agents:
    def __init__(self, agents: Mapping[str, Agent], source: str | None = None) -> None:
        self._agents = dict(agents)
        self.source = source

    @classmethod
    def builtin(cls) -> Agents:
        return cls({DEFAULT_AGENT: BUILTIN_DEFAULT})

    def names(self) -> list[str]:
        return list(self._agents)

    def match(self, dialled: str) -> Agent | None:
        for key in (dialled, dialled.removeprefix("+"), DEFAULT_AGENT):
            if key and key in self._agents:
                return self._agents[key]
        return None


def load_agents(path: str | None) -> Agents:
    """The agents of ``PALAVER_SIP_AGENTS`` (the built-in default when unset). Raises ``ConfigError``."""
    if not path:
        return Agents.builtin()
    file = Path(path)
    where = f"PALAVER_SIP_AGENTS={path}"
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"{where}: unsupported file type {suffix or '(none)'!r}; use .toml or .json")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read the file: {exc}") from exc
    data: Any
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if suffix == ".json" else "TOML"
        raise ConfigError(f"{where}: not valid {kind}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be an object of agents")
    if not data:
        raise ConfigError(f"{where}: no agents defined")
    agents: dict[str, Agent] = {}
    for name, config in data.items():
        agents[name] = _parse_agent(where, name, config)
    return Agents(agents, source=str(file))


def _parse_agent(where: str, name: str, config: Any) -> Agent:
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: agent {name!r} must be a table of session settings")
    agent = Agent(name, config)
    try:
        agent.session_config(max_seconds=0)
    except ProtocolError as exc:
        field_name = f", field {exc.param!r}" if exc.param else ""
        raise ConfigError(f"{where}: agent {name!r}{field_name}: {exc.message}") from exc
    return agent
