"""Sans-I/O SIP (RFC 3261): messages and transactions.

Bytes in, typed messages out; malformed peer input becomes a SipParseError
carrying the status to answer.  Transactions take messages and ``now`` and
return actions.  No sockets, no asyncio, no clocks.
"""

from __future__ import annotations

from .challenge import AuthHeader, parse_auth_header, quote_string
from .errors import SipParseError
from .headers import (
    CSeq,
    MediaType,
    NameAddr,
    Via,
    format_name_addr,
    parse_call_id,
    parse_contacts,
    parse_content_length,
    parse_content_type,
    parse_cseq,
    parse_expires,
    parse_max_forwards,
    parse_name_addr,
    parse_routes,
    parse_token_list,
    parse_via,
)
from .matching import MAGIC_COOKIE, TransactionTable, client_key, is_rfc3261_branch, server_key
from .message import COMPACT_FORMS, Headers, Message, Request, Response, canonical_name
from .parser import StreamFramer, parse_message
from .status import REASON_PHRASES, make_response, reason_phrase, response_for_error
from .timers import DEFAULT_TIMERS, Timer, TimerConfig
from .transaction import (
    Action,
    ClientTransaction,
    Deliver,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Send,
    ServerTransaction,
    State,
    Terminated,
    Timeout,
    Transaction,
    TransactionError,
    TransportFailed,
    client_transaction,
    make_ack,
    server_transaction,
)
from .uri import URI, AbsoluteURI, SipURI, TelURI, parse_uri

__all__ = [
    "COMPACT_FORMS",
    "DEFAULT_TIMERS",
    "MAGIC_COOKIE",
    "REASON_PHRASES",
    "URI",
    "AbsoluteURI",
    "Action",
    "AuthHeader",
    "CSeq",
    "ClientTransaction",
    "Deliver",
    "Headers",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "MediaType",
    "Message",
    "NameAddr",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "Request",
    "Response",
    "Send",
    "ServerTransaction",
    "SipParseError",
    "SipURI",
    "State",
    "StreamFramer",
    "TelURI",
    "Terminated",
    "Timeout",
    "Timer",
    "TimerConfig",
    "Transaction",
    "TransactionError",
    "TransactionTable",
    "TransportFailed",
    "Via",
    "canonical_name",
    "client_key",
    "client_transaction",
    "format_name_addr",
    "is_rfc3261_branch",
    "make_ack",
    "make_response",
    "parse_auth_header",
    "parse_call_id",
    "parse_contacts",
    "parse_content_length",
    "parse_content_type",
    "parse_cseq",
    "parse_expires",
    "parse_max_forwards",
    "parse_message",
    "parse_name_addr",
    "parse_routes",
    "parse_token_list",
    "parse_uri",
    "parse_via",
    "quote_string",
    "reason_phrase",
    "response_for_error",
    "server_key",
    "server_transaction",
]
