"""The root of Palaver's exception tree.

Every exception Palaver raises on purpose is a :class:`PalaverError`; each layer has its own
subclass (settings, protocol, SIP, calls, backends, tools, egress). Foreign exceptions (httpx,
the ``mcp`` SDK, pydantic, OS errors) are translated into one of these at the boundary of the
layer that called the foreign code, so callers catch Palaver's classes only.
"""

from __future__ import annotations

__all__ = ["PalaverError"]


class PalaverError(Exception):
    """Any error Palaver raises on purpose."""
