"""Strict validation of palaver's JSON against the official ``openai`` models.

The SDK models allow extra fields, so a misspelt field would pass plain validation. Here
extras are only tolerated where documented, and re-dumping the SDK object must give back
exactly the JSON we sent (nothing coerced, nothing dropped).
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pydantic
from openai.types.realtime import RealtimeServerEvent

SERVER_EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RealtimeServerEvent)

#: SDK model name -> extra fields palaver may legitimately send.
ALLOWED_EXTRAS: dict[str, set[str]] = {
    # session.created/updated carry the full effective session, typed as the request model.
    "RealtimeSessionCreateRequest": {"object", "id", "expires_at"},
    "RealtimeTranscriptionSessionCreateRequest": {"object", "id", "expires_at"},
    # palaver gives every server event an event_id; the SDK's DTMF model does not declare one.
    "InputAudioBufferDtmfEventReceivedEvent": {"event_id"},
    # observed on the wire, not declared by the SDK.
    "ResponseAudioTranscriptDeltaEvent": {"obfuscation"},
}


def unexpected_extras(value: object, path: str = "") -> list[str]:
    """Paths of extra (undeclared) fields in a validated SDK object tree."""
    found: list[str] = []
    if isinstance(value, openai.BaseModel):
        allowed = ALLOWED_EXTRAS.get(type(value).__name__, set())
        found += [f"{path}.{key}" for key in (value.model_extra or {}) if key not in allowed]
        for name in type(value).model_fields:
            found += unexpected_extras(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            found += unexpected_extras(entry, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, entry in value.items():
            found += unexpected_extras(entry, f"{path}.{key}")
    return found


def validate_server_json(text: str) -> Any:
    """Validate one server event's JSON with the SDK union; return the SDK object."""
    data = json.loads(text)
    parsed = SERVER_EVENTS.validate_python(data)
    assert parsed.type == data["type"]
    assert unexpected_extras(parsed) == []
    assert parsed.model_dump(mode="json", exclude_unset=True) == data
    return parsed
