"""The ASGI application: routes, startup and shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse

from palaver import __version__
from palaver.backends.registry import Backends, build_backends
from palaver.calls.rest import calls_router
from palaver.calls.sip_gateway import SipGateway
from palaver.calls.switchboard import CallSettings, Switchboard
from palaver.config import Settings
from palaver.limits import SessionLimit, check_limit_settings
from palaver.server.body_limit import BodyLimit
from palaver.server.exposure import check_exposure, open_exposure_warning
from palaver.transports.sip_settings import check_sip_settings
from palaver.transports.websocket import RealtimeContext, realtime_endpoint
from palaver.transports.wire_log import WireLog

log = logging.getLogger("palaver")


def create_app(settings: Settings, backends: Backends | None = None) -> FastAPI:
    """Build the app. ``backends`` may be given (tests, embedding); otherwise they load at startup.

    Raises ``ConfigError`` for bad call settings (agents file, webhook secret, default action).
    The running ``Switchboard`` (phone calls) is ``app.state.switchboard``.
    """
    state: dict[str, RealtimeContext] = {}
    call_settings = CallSettings.from_settings(settings)
    check_exposure(settings)
    check_sip_settings(settings)
    check_limit_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loaded = backends if backends is not None else build_backends(settings)
        wire_log = WireLog(settings.wire_log) if settings.wire_log else None
        switchboard = Switchboard(call_settings, wire_log=wire_log)
        app.state.switchboard = switchboard
        sessions = SessionLimit(settings.max_sessions)  # one count for WebSocket sessions and SIP calls
        state["ctx"] = RealtimeContext(
            settings=settings, backends=loaded, wire_log=wire_log, switchboard=switchboard, sessions=sessions
        )
        open_warning = open_exposure_warning(settings)
        if open_warning is not None:
            log.warning(open_warning)
        log.info(
            "palaver %s ready: stt=%s tts=%s brain=%s",
            __version__,
            loaded.stt.name,
            loaded.tts.name,
            loaded.chat.name,
        )
        if loaded.chat.name == "echo":
            log.warning("no PALAVER_LLM_BASE_URL: using the echo brain, which repeats what it hears")
        gateway: SipGateway | None = None
        if settings.sip_enabled:
            gateway = SipGateway(settings, loaded, switchboard, sessions=sessions)
            await gateway.start()
            app.state.sip_gateway = gateway
        try:
            yield
        finally:
            if gateway is not None:
                await gateway.close()
            await switchboard.aclose()
            if wire_log is not None:
                wire_log.close()
            if backends is None:
                loaded.close()

    # The API docs describe every route; a keyed server does not show them to strangers.
    open_docs = settings.api_key is None
    app = FastAPI(
        title="Palaver",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json" if open_docs else None,
        docs_url="/docs" if open_docs else None,
        redoc_url="/redoc" if open_docs else None,
    )

    # Every REST body is capped (413) before a route reads it.
    app.add_middleware(BodyLimit, max_bytes=settings.http_max_body_bytes)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        ctx = state.get("ctx")
        if ctx is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        sessions = ctx.sessions.held if ctx.sessions is not None else 0
        return JSONResponse(
            {
                "status": "ok",
                "brain": ctx.backends.chat.name,
                "sessions": sessions,
                "max_sessions": settings.max_sessions,
            }
        )

    @app.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket) -> None:
        await realtime_endpoint(websocket, state["ctx"])

    def running_switchboard() -> Switchboard | None:
        ctx = state.get("ctx")
        return ctx.switchboard if ctx is not None else None

    app.include_router(calls_router(running_switchboard, settings.api_key))

    return app
