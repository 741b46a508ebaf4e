"""Settings: every one an environment variable (``PALAVER_*``); ``palaver serve`` flags override them.

These names are public API: they are documented in the README and kept stable.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from palaver.errors import PalaverError

DEFAULT_MODEL = "gpt-realtime"


class ConfigError(PalaverError, ValueError):
    """A setting has a value Palaver cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    #: With no key the server is open: allowed on loopback only, unless ``allow_open`` says so.
    api_key: str | None = None
    #: Serve without a key on a non-loopback address on purpose (logged loudly at startup).
    allow_open: bool = False
    #: Sessions at once across every transport (WebSocket, SIP, later WebRTC); then 429 / 486.
    max_sessions: int = 100
    #: WebSocket keepalive: a ping this often; a pong missing for as long closes the socket.
    ws_ping_seconds: float = 20.0
    #: A WebSocket session with no client frame and no response for this long is closed (0: never).
    ws_idle_seconds: float = 600.0
    #: Largest WebSocket frame a client may send; larger ones get an ``error`` event.
    ws_max_frame_bytes: int = 16 * 1024 * 1024
    #: Largest REST request body; larger ones get 413.
    http_max_body_bytes: int = 1024 * 1024
    #: Where the server may connect on a client's behalf (MCP ``server_url``): comma-separated URL
    #: prefixes, ``host[:port]`` or CIDRs. Unset: any http(s) URL when the HTTP server binds
    #: loopback only, otherwise public addresses only (see docs/security.md).
    mcp_allow: str | None = None
    #: Show personal data (numbers, SIP URIs and headers, tool arguments, transcripts, query
    #: strings) in logs. Off: such values are redacted to a short stable hash.
    log_pii: bool = False
    #: Any OpenAI-compatible Chat Completions endpoint; unset means the offline echo brain.
    llm_base_url: str | None = None
    llm_model: str = "default"
    llm_api_key: str | None = None
    #: Operator's policy on tool calls (TOML or JSON file; see docs/tool-policies.md). Unset: all allowed.
    tool_policy: str | None = None
    #: Seconds an MCP tool call may take, connecting to an MCP server, and waiting for a client's approval.
    mcp_call_seconds: float = 30.0
    mcp_connect_seconds: float = 10.0
    mcp_approval_seconds: float = 120.0
    #: Whether that model takes images (vision); with false, image input is refused with a clear error.
    llm_vision: bool = True
    #: Hard limit of a session (OpenAI's is 60 minutes).
    session_max_seconds: float = 3600.0
    #: Append every server event sent, one JSON per line, to this file (for debugging and tests).
    wire_log: str | None = None
    #: Events queued for one client before it is disconnected as too slow.
    send_queue_events: int = 4096
    #: Threads for model work (ASR, TTS) so it never blocks the event loop.
    model_threads: int = 4
    log_level: str = "info"
    #: permessage-deflate on WebSockets. Off by default: the traffic is mostly base64 audio, which
    #: barely compresses, and deflating it costs more CPU than the rest of a listening session.
    ws_compression: bool = False
    #: Speech recogniser: "pocketsphinx" (embedded, English) or "null" (hears nothing, instantly).
    stt: str = "pocketsphinx"
    #: Utterances recognised live at once, server-wide (each holds a pocketsphinx decoder, ~100 MB);
    #: more simultaneous talkers are recognised in one pass as soon as a slot frees up.
    stt_streams: int = 8
    #: Voice activity detector for turn detection: "silero" (onnxruntime) or "energy" (clean audio only).
    vad: str = "silero"
    #: Echo guard while the assistant's audio plays: speech must last this long to interrupt it ...
    barge_in_min_speech_ms: int = 250
    #: ... and exceed the VAD threshold by this much (0 and 0 turn the guard off).
    barge_in_threshold_boost: float = 0.1
    #: Phone calls: where ``realtime.call.incoming`` is POSTed (unset: calls are answered at once
    #: by the static agent for the dialled number) ...
    webhook_url: str | None = None
    #: ... signed with this secret (``whsec_<base64>`` as OpenAI's, or any string, used as UTF-8).
    webhook_secret: str | None = None
    #: Delivery attempts of one webhook (retried on connection errors, 5xx, 429) and each one's timeout.
    webhook_attempts: int = 4
    webhook_attempt_seconds: float = 3.0
    #: How long a ringing call waits for a REST accept/reject after its webhook ...
    sip_decision_seconds: float = 10.0
    #: ... and what happens then, or when the webhook fails: "accept" (static agent) or "reject" (603).
    sip_default_action: str = "accept"
    #: Static agents per dialled number (TOML or JSON; see calls/agents.py). Unset: one built-in agent.
    sip_agents: str | None = None
    #: SIP (phone calls): on by default, listening on loopback like the HTTP port.  Binding any other
    #: address needs ``sip_allow`` or ``sip_credentials``: a fresh install never takes strangers' calls.
    sip_enabled: bool = True
    sip_host: str = "127.0.0.1"
    #: UDP and TCP port (0: any free port); TLS listens on ``sip_tls_port`` (unset: ``sip_port`` + 1) ...
    sip_port: int = 5060
    sip_tls_port: int | None = None
    #: ... when both a certificate chain and its key (PEM files) are given.
    sip_tls_cert: str | None = None
    sip_tls_key: str | None = None
    #: Verify the certificate of TLS servers we connect to (trunks); false only for testing.
    sip_tls_verify: bool = True
    #: The address peers reach us at, for Via and Contact (unset: the bind address, or the primary
    #: interface's when binding 0.0.0.0 / ::).  Set it behind NAT.
    sip_advertise_host: str | None = None
    #: Source networks calls are taken from, comma-separated (``10.0.0.0/8,192.168.1.0/24``) ...
    sip_allow: str | None = None
    #: ... and/or digest credentials callers must present, ``user:password`` pairs, comma-separated.
    sip_credentials: str | None = None
    #: Digest credentials we answer a trunk's 401/407 challenge with.
    sip_trunk_user: str | None = None
    sip_trunk_password: str | None = None
    #: UDP ports for RTP (an even port per call plus the next one for RTCP); 0 and 0: any free ports.
    rtp_port_min: int = 40000
    rtp_port_max: int = 49999
    #: A call with no RTP from the caller for this long is hung up (BYE); 0 turns the check off.
    #: A call on hold (sendonly/inactive) never trips it.
    rtp_timeout_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"PALAVER_{f.name.upper()}")
            if raw is None:
                continue
            if raw == "":
                if f.name == "api_key":
                    # An empty key must never silently mean "open".
                    raise ConfigError(
                        "PALAVER_API_KEY is set but empty: give it a key, or unset it to serve"
                        " open on loopback"
                    )
                continue
            values[f.name] = _convert(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; a wildcard or any other name is not loopback."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _convert(name: str, raw: str, type_name: Any) -> Any:
    kind = str(type_name)
    if kind.startswith("bool"):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"PALAVER_{name.upper()}={raw!r} is not a boolean (use true or false)")
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"PALAVER_{name.upper()}={raw!r} is not a number") from exc
    return raw
