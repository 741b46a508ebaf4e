"""The UA core's vocabulary: its configuration, the events it reports, the error its commands raise."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from palaver.errors import SipError

from .message import Request
from .peer import Peer, TransportName
from .timers import DEFAULT_TIMERS, TimerConfig
from .ua_policy import Network

__all__ = [
    "CallCancelled",
    "CallConfirmed",
    "CallEnded",
    "IncomingCall",
    "InfoReceived",
    "ReInvite",
    "ReferStatus",
    "UaConfig",
    "UaEvent",
    "UaStateError",
]


class UaStateError(SipError):
    """A UA command on a call that is unknown, over, or in a phase that does not allow it.

    The UA's own error: the calls layer (``calls.sip_gateway``) translates it at its boundary
    into ``calls.CallStateError`` (REST 409) and cleans the call up."""


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A new INVITE was admitted; answer with ringing/accept/reject."""

    call: str
    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class CallCancelled:
    """The caller cancelled before we answered (we sent 487)."""

    call: str


@dataclass(frozen=True, slots=True)
class CallConfirmed:
    """The ACK of our 2xx arrived: media may flow both ways."""

    call: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over.

    ``reason``: "bye" (the peer hung up), "hangup" (our BYE completed;
    ``status`` is its final status, 408 on timeout), "ack_timeout" (no ACK
    for our 2xx: we sent BYE), "rejected" (our ``reject``; ``status`` is
    ours), "transport_error" (the INVITE's connection failed before we
    answered).
    """

    call: str
    reason: str
    status: int | None = None


@dataclass(frozen=True, slots=True)
class ReferStatus:
    """Progress of our REFER: its response (202 → not final), then each NOTIFY's sipfrag status."""

    call: str
    status: int
    final: bool


@dataclass(frozen=True, slots=True)
class ReInvite:
    """A re-INVITE or UPDATE with an offer (None: a re-INVITE asking us for an offer)."""

    call: str
    offer: bytes | None


@dataclass(frozen=True, slots=True)
class InfoReceived:
    """An INFO in the dialog (already answered 200); DTMF often comes as application/dtmf-relay."""

    call: str
    content_type: str | None
    body: bytes


UaEvent = IncomingCall | CallCancelled | CallConfirmed | CallEnded | ReferStatus | ReInvite | InfoReceived


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class UaConfig:
    """What the UA needs to know about itself.

    ``contacts``: our address per transport (Via sent-by and Contact); the
    Contact of a dialog is the one for the transport its INVITE came on.
    ``allow_from``/``inbound_credentials``/``realm``: the inbound policy (see
    ua_policy.py; no allow list and no credentials admits everyone, which the
    configuration layer allows only on loopback).  ``trunk_credentials``
    (user, password) answer 401/407 challenges to our BYE and REFER.
    """

    contacts: Mapping[TransportName, tuple[str, int]]
    user_agent: str = "Palaver"
    timers: TimerConfig = DEFAULT_TIMERS
    allow_from: tuple[Network, ...] | None = None
    inbound_credentials: Mapping[str, str] | None = None
    realm: str = "palaver"
    digest_algorithms: tuple[str, ...] = ("MD5",)
    nonce_ttl: float = 300.0
    trunk_credentials: tuple[str, str] | None = None
    contact_user: str | None = None
