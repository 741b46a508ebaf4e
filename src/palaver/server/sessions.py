"""One place that builds a :class:`Session` from the server's settings and loaded backends.

Every transport (WebSocket, SIP, later WebRTC) makes its sessions here, so a setting such as
the barge-in guard or the MCP timeouts means the same thing on every kind of connection.
"""

from __future__ import annotations

from collections.abc import Callable

from palaver.backends.registry import Backends
from palaver.config import Settings
from palaver.engine.cascade import CascadeEngine
from palaver.protocol.server_events import ServerEvent
from palaver.session.session import Session, SessionConfig
from palaver.turn.detector import BargeInGuard

__all__ = ["build_session"]


def build_session(
    settings: Settings,
    backends: Backends,
    config: SessionConfig,
    emit: Callable[[ServerEvent], None],
    *,
    server_playout: bool = False,
    on_playout_clear: Callable[[], None] | None = None,
) -> Session:
    """A session on the shared backends. ``server_playout``: the transport plays the audio at
    real time itself (SIP, WebRTC), so barge-in truncates at what the caller heard."""
    engine = CascadeEngine(chat=backends.chat, tts=backends.tts, executor=backends.executor)
    return Session(
        config=config,
        engine=engine,
        stt=backends.stt,
        vad=backends.vad,
        barge_in=BargeInGuard(
            min_speech_ms=settings.barge_in_min_speech_ms, threshold_boost=settings.barge_in_threshold_boost
        ),
        executor=backends.executor,
        stt_slots=backends.stt_slots,
        accepts_images=backends.chat.accepts_images,
        policy=backends.policy,
        mcp_timeout=settings.mcp_call_seconds,
        mcp_connect_timeout=settings.mcp_connect_seconds,
        approval_timeout=settings.mcp_approval_seconds,
        mcp_egress=backends.egress,
        emit=emit,
        server_playout=server_playout,
        on_playout_clear=on_playout_clear,
    )
