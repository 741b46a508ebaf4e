"""Phone calls the Realtime API's way, independent of the transport that carries them.

``Call`` and ``CallControl`` (call.py) are the interface with the transport (the SIP bridge);
the ``Switchboard`` (switchboard.py) registers calls and decides them by webhook
(webhooks.py) and REST (rest.py), or with a static agent (agents.py); each call's events reach
its sideband WebSockets through its ``EventFanout`` (fanout.py).
"""

from palaver.calls.call import Call, CallControl, CallState, CallStateError, SipHeader
from palaver.calls.fanout import EventFanout
from palaver.calls.registry import CallRegistry
from palaver.calls.switchboard import CallSettings, Switchboard

__all__ = [
    "Call",
    "CallControl",
    "CallRegistry",
    "CallSettings",
    "CallState",
    "CallStateError",
    "EventFanout",
    "SipHeader",
    "Switchboard",
]
