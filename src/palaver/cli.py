"""The ``palaver`` command."""

from __future__ import annotations

import argparse
import logging
import sys

from palaver import __version__, redact
from palaver.config import ConfigError, Settings

#: uvicorn's ``ws_max_size`` is this many times ``PALAVER_WS_MAX_FRAME_BYTES``.
WS_HARD_CAP_FACTOR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="palaver", description="Self-hosted OpenAI Realtime-compatible voice agents"
    )
    parser.add_argument("--version", action="version", version=f"palaver {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="run the server (settings from PALAVER_* variables; flags override)"
    )
    serve.add_argument("--host", help="address to bind (PALAVER_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (PALAVER_PORT, default 8000)")
    serve.add_argument("--llm-base-url", help="OpenAI-compatible chat endpoint (PALAVER_LLM_BASE_URL)")
    serve.add_argument("--llm-model", help="model name at that endpoint (PALAVER_LLM_MODEL)")
    serve.add_argument("--log-level", help="debug, info, warning, error (PALAVER_LOG_LEVEL)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            host=args.host,
            port=args.port,
            llm_base_url=args.llm_base_url,
            llm_model=args.llm_model,
            log_level=args.log_level,
        )
    except ConfigError as exc:
        print(f"palaver: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


def serve(settings: Settings) -> int:
    import uvicorn

    from palaver.backends.base import BackendUnavailable
    from palaver.backends.registry import build_backends
    from palaver.server.app import create_app
    from palaver.server.exposure import check_exposure

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    redact.configure(log_pii=settings.log_pii)  # personal data out of the logs unless PALAVER_LOG_PII
    try:
        check_exposure(settings)  # before any model loads: a refusal is immediate
    except ConfigError as exc:
        print(f"palaver: {exc}", file=sys.stderr)
        return 2
    try:
        backends = build_backends(settings)
    except BackendUnavailable as exc:
        print(f"palaver: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        try:
            app = create_app(settings, backends)
        except ConfigError as exc:
            print(f"palaver: {exc}", file=sys.stderr)
            return 2
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            # The transport's hard cap (close 1009), above the app's own frame limit, which
            # answers frames between the two with an ``error`` event and keeps the session.
            ws_max_size=WS_HARD_CAP_FACTOR * settings.ws_max_frame_bytes,
            ws_per_message_deflate=settings.ws_compression,
            # A ping every ws_ping_seconds; no pong within as long closes the socket (0: no pings).
            ws_ping_interval=settings.ws_ping_seconds or None,
            ws_ping_timeout=settings.ws_ping_seconds or None,
        )
    finally:
        backends.close()
    return 0
