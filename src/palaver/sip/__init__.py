"""Sans-I/O SIP (RFC 3261): the message layer.

Bytes in, typed messages out; malformed peer input becomes a SipParseError
carrying the status to answer.  No sockets, no asyncio, no clocks.
"""

from __future__ import annotations

from .errors import SipParseError
from .headers import (
    CSeq,
    NameAddr,
    Via,
    format_name_addr,
    parse_call_id,
    parse_content_length,
    parse_cseq,
    parse_max_forwards,
    parse_name_addr,
    parse_via,
)
from .message import COMPACT_FORMS, Headers, Message, Request, Response, canonical_name
from .parser import StreamFramer, parse_message
from .uri import URI, AbsoluteURI, SipURI, TelURI, parse_uri

__all__ = [
    "COMPACT_FORMS",
    "URI",
    "AbsoluteURI",
    "CSeq",
    "Headers",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "SipParseError",
    "SipURI",
    "StreamFramer",
    "TelURI",
    "Via",
    "canonical_name",
    "format_name_addr",
    "parse_call_id",
    "parse_content_length",
    "parse_cseq",
    "parse_max_forwards",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
]
