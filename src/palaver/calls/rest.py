"""Call control over REST, as OpenAI's: ``POST /v1/realtime/calls/{call_id}/accept|reject|refer|hangup``.

Same API-key rule as the WebSocket (``Authorization: Bearer``). Success is 200 with an empty
body (the ``openai`` SDK returns ``None``); errors carry OpenAI's JSON shape
``{"error": {message, type, code, param}}``:

- 400 for a bad body: ``accept``'s is a realtime session config (``type: "realtime"``
  required), validated by the ``session.update`` rules; ``reject``'s optional ``status_code``
  is 400-699 (default 603); ``refer``'s required ``target_uri`` is a ``sip:``, ``sips:`` or
  ``tel:`` URI; unknown fields are refused;
- 401 for a wrong or missing key; 404 ``call_not_found`` for an unknown call (or one
  forgotten a while after it ended);
- 409 when the call's state forbids the command: accept/reject once decided
  (``call_already_accepted`` / ``call_already_rejected``) or over (``call_ended``);
  refer/hangup before the call is accepted (``call_not_accepted``) or once over
  (``call_ended``, also when the caller's BYE or CANCEL is in but not handled yet), or when the
  line cannot take it now (``call_busy``: a transfer in progress, the ACK not in yet). A
  ``hangup`` of a still-pending call declines it (603) instead of failing;
- 500 ``call_control_failed`` when the transport could not carry the command out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from palaver.calls.call import DEFAULT_REJECT_STATUS, Call, CallStateError
from palaver.calls.switchboard import Switchboard
from palaver.config import DEFAULT_MODEL
from palaver.errors import CallError
from palaver.protocol.bounds import ClientJsonError, loads_client_json
from palaver.protocol.errors import ProtocolError
from palaver.protocol.session_config import new_realtime_session
from palaver.protocol.wire import json_type_name
from palaver.redact import new_error_id, server_error_message
from palaver.server.auth import key_accepted, presented_key

log = logging.getLogger(__name__)

REFER_SCHEMES = ("sip:", "sips:", "tel:")

Command = Callable[[Switchboard, Call, Any], Awaitable[None]]


class _Refused(CallError):
    """An error answer: HTTP status and OpenAI's error object."""

    def __init__(self, status: int, message: str, code: str | None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def response(self) -> JSONResponse:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        body = {"error": {"message": self.message, "type": kind, "code": self.code, "param": self.param}}
        return JSONResponse(body, status_code=self.status)


def calls_router(switchboard: Callable[[], Switchboard | None], api_key: str | None) -> APIRouter:
    """The call-control routes; ``switchboard()`` gives the running switchboard (None while starting)."""
    router = APIRouter()

    def route(name: str, command: Command) -> None:
        async def endpoint(request: Request, call_id: str) -> Response:
            try:
                await _run(request, call_id, command, switchboard(), api_key)
            except _Refused as refused:
                return refused.response()
            return Response(status_code=200)

        router.add_api_route(
            f"/v1/realtime/calls/{{call_id}}/{name}", endpoint, methods=["POST"], name=f"calls_{name}"
        )

    route("accept", _accept)
    route("reject", _reject)
    route("refer", _refer)
    route("hangup", _hangup)
    route("dtmf", _dtmf)  # Palaver's own: key presses on the line (IVR navigation)
    return router


async def _run(
    request: Request, call_id: str, command: Command, board: Switchboard | None, api_key: str | None
) -> None:
    if not key_accepted(api_key, presented_key(request.headers)):
        raise _Refused(401, "Incorrect API key provided.", "invalid_api_key")
    if board is None:
        raise _Refused(503, "The server is starting; try again shortly.", None)
    call = board.get(call_id)
    if call is None:
        raise _Refused(404, f"Call '{call_id}' not found.", "call_not_found")
    body = await _json_body(request)
    try:
        await command(board, call, body)
    except _Refused:
        raise
    except CallStateError as exc:
        raise _Refused(409, exc.message, exc.code) from None
    except Exception:
        if call.over:
            raise _Refused(409, f"Call '{call.id}' has ended.", "call_ended") from None
        error_id = new_error_id()
        action = request.url.path.rsplit("/", 1)[-1]
        log.exception("call %s: %s failed in the transport (error id %s)", call.id, action, error_id)
        message = server_error_message("The call control request", error_id)
        raise _Refused(500, message, "call_control_failed") from None


async def _accept(board: Switchboard, call: Call, body: Any) -> None:
    body = _object(body)
    if "type" not in body:
        raise _Refused(400, "Missing required parameter: 'type'.", "missing_required_parameter", "type")
    model = body.get("model")
    expires_at = int(time.time() + board.settings.session_max_seconds)
    try:
        config = new_realtime_session(
            model if isinstance(model, str) else DEFAULT_MODEL,
            expires_at=expires_at,
            overrides=body,
            prefix="",
        )
    except ProtocolError as exc:
        raise _Refused(400, exc.message, exc.code, exc.param) from None
    await call.accept(config)


async def _reject(board: Switchboard, call: Call, body: Any) -> None:
    fields = _object(body, allowed=("status_code",))
    status = fields.get("status_code")
    if status is None:
        status = DEFAULT_REJECT_STATUS
    if not isinstance(status, int) or isinstance(status, bool):
        message = (
            f"Invalid type for 'status_code': expected an integer, but got {json_type_name(status)} instead."
        )
        raise _Refused(400, message, "invalid_type", "status_code")
    if not 400 <= status <= 699:
        message = f"Invalid 'status_code': {status}. Expected a SIP failure status from 400 to 699."
        raise _Refused(400, message, "invalid_value", "status_code")
    await call.reject(status)


async def _refer(board: Switchboard, call: Call, body: Any) -> None:
    fields = _object(body, allowed=("target_uri",))
    if "target_uri" not in fields:
        message = "Missing required parameter: 'target_uri'."
        raise _Refused(400, message, "missing_required_parameter", "target_uri")
    target = fields["target_uri"]
    if not isinstance(target, str):
        message = (
            f"Invalid type for 'target_uri': expected a string, but got {json_type_name(target)} instead."
        )
        raise _Refused(400, message, "invalid_type", "target_uri")
    scheme, _, rest = target.partition(":")
    if f"{scheme.lower()}:" not in REFER_SCHEMES or not rest or any(c in target for c in ' \t\r\n<>"'):
        message = f"Invalid 'target_uri': {target!r}. Expected a sip:, sips: or tel: URI."
        raise _Refused(400, message, "invalid_value", "target_uri")
    await call.refer(target)


async def _hangup(board: Switchboard, call: Call, body: Any) -> None:
    await call.hangup()


#: Keys RFC 4733 can press, and the longest press accepted.
DTMF_KEYS = frozenset("0123456789*#ABCD")
MAX_DTMF_DIGITS = 64


async def _dtmf(board: Switchboard, call: Call, body: Any) -> None:
    fields = _object(body, allowed=("digits", "duration_ms"))
    digits = fields.get("digits")
    if digits is None:
        raise _Refused(400, "Missing required parameter: 'digits'.", "missing_required_parameter", "digits")
    if not isinstance(digits, str):
        message = f"Invalid type for 'digits': expected a string, but got {json_type_name(digits)} instead."
        raise _Refused(400, message, "invalid_type", "digits")
    if not digits or len(digits) > MAX_DTMF_DIGITS or not set(digits.upper()) <= DTMF_KEYS:
        message = f"Invalid 'digits': {digits!r}. Expected 1 to {MAX_DTMF_DIGITS} of 0-9, *, #, A-D."
        raise _Refused(400, message, "invalid_value", "digits")
    duration = fields.get("duration_ms", 100)
    if not isinstance(duration, int) or isinstance(duration, bool) or not 40 <= duration <= 2000:
        message = f"Invalid 'duration_ms': {duration!r}. Expected an integer from 40 to 2000."
        raise _Refused(400, message, "invalid_value", "duration_ms")
    await call.send_dtmf(digits.upper(), duration)


async def _json_body(request: Request) -> Any:
    """The JSON body; an empty body reads as ``{}`` (the SDK's hangup sends none)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return loads_client_json(raw)  # the frames' decoder: no nesting, NaN or surrogate can hurt
    except ClientJsonError as exc:
        message = f"We could not parse the JSON body of your request ({exc}). The body must be valid JSON."
        raise _Refused(400, message, "invalid_json") from None


def _object(body: Any, *, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    if not isinstance(body, dict):
        message = (
            f"Invalid type for the request body: expected an object, but got {json_type_name(body)} instead."
        )
        raise _Refused(400, message, "invalid_type")
    for key in body:
        if allowed is not None and key not in allowed:
            raise _Refused(400, f"Unknown parameter: '{key}'.", "unknown_parameter", key)
    return body
