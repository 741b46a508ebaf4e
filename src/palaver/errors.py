"""The root of Palaver's exception tree.

Every exception Palaver raises on purpose is a :class:`PalaverError`; each layer has its own
subclass (settings, protocol, SIP, calls, media, backends, tools, egress). Foreign exceptions
(httpx, the ``mcp`` SDK, pydantic, OS errors) are translated into one of these at the boundary of
the layer that called the foreign code, so callers catch Palaver's classes only. Where callers
relied on a builtin base (``ValueError`` for bad input, ``RuntimeError``) the class keeps it too.

The tree (``tests/test_errors.py`` pins it)::

    PalaverError
    ├── ConfigError (ValueError)                  config
    ├── ProtocolError                             protocol.errors: a client-visible ``error`` event
    │   └── ClientJsonError (ValueError)          protocol.bounds: a frame that is not JSON we take
    ├── SipError                                  sip
    │   ├── SipParseError                         peer garbage, with the 4xx to answer
    │   ├── DigestError (ValueError)              a challenge we cannot answer
    │   ├── TransactionError                      a TU move the transaction does not allow
    │   └── UaStateError                          a UA command on an unknown/over/wrong-phase call
    ├── CallError                                 calls
    │   ├── CallStateError                        REST answers 409 with its ``code``
    │   └── SipUnavailable (RuntimeError)         the SIP ports could not be opened
    ├── MediaError                                sdp, rtp
    │   ├── SdpError (ValueError) └── NoAcceptableMedia
    │   └── RtpError, RtcpError, SrtpError, DtmfError (ValueError)
    ├── BackendError └── BackendUnavailable       backends.base
    ├── ToolError                                 tools
    │   ├── McpError                              tools.mcp_errors
    │   └── PolicyError (ValueError)              tools.policy
    └── EgressRefused                             egress

The layer bases without a module of their own live here; the imports of this module point
nowhere, so any layer may use them.
"""

from __future__ import annotations

__all__ = ["CallError", "MediaError", "PalaverError", "SipError", "ToolError"]


class PalaverError(Exception):
    """Any error Palaver raises on purpose."""


class SipError(PalaverError):
    """The SIP layer (``palaver.sip``): parsing, digest, transactions, the UA core."""


class CallError(PalaverError):
    """The calls layer (``palaver.calls``): call control, the SIP gateway."""


class MediaError(PalaverError):
    """Media cores: SDP (``palaver.sdp``) and RTP/RTCP/SRTP/DTMF (``palaver.rtp``)."""


class ToolError(PalaverError):
    """Tools (``palaver.tools``): MCP, the tool policy."""
