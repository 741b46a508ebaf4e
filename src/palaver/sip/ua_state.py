"""Per-call state of the UA core (ua.py owns and mutates it)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .dialog import Dialog
from .message import Request, Response
from .peer import Peer
from .transaction import InviteServerTransaction, ServerTransaction

__all__ = ["CallState", "Offer", "Outgoing", "Phase", "Unacked"]


class Phase(StrEnum):
    PENDING = "pending"  # INVITE received, no final response yet
    ACCEPTED = "accepted"  # 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"
    ENDING = "ending"  # our BYE is out
    ENDED = "ended"


@dataclass
class Unacked:
    """A 2xx to an INVITE that we retransmit until its ACK (§13.3.1.4)."""

    response: Response
    peer: Peer  # where the INVITE's responses go
    cseq: int
    interval: float
    next_at: float | None  # None on reliable transports
    give_up_at: float


@dataclass
class Offer:
    """A re-INVITE or UPDATE waiting for accept_reinvite/reject_reinvite."""

    tx: ServerTransaction
    request: Request


@dataclass(eq=False)
class CallState:
    """One call: the INVITE, where its responses go, its transaction and dialog, what is pending."""

    handle: str
    invite: Request
    peer: Peer
    reply_to: Peer
    tx: InviteServerTransaction
    dialog: Dialog
    phase: Phase = Phase.PENDING
    unacked: Unacked | None = None
    offer: Offer | None = None
    bye_wanted: bool = False
    refer_active: bool = False


@dataclass(eq=False)
class Outgoing:
    """One request we sent in a dialog (BYE, REFER) and whether it was already re-sent with credentials."""

    call: CallState
    request: Request
    authorized: bool = False
