"""The protocol-level error raised for bad client input, and its ``error`` event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from palaver.errors import PalaverError

if TYPE_CHECKING:
    from .server_events import ErrorEvent


class ProtocolError(PalaverError):
    """A client-visible error; ``to_event()`` turns it into the wire ``error`` event."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.event_id = event_id
        self.type = type

    def __repr__(self) -> str:
        return (
            f"ProtocolError({self.message!r}, code={self.code!r}, param={self.param!r}, "
            f"event_id={self.event_id!r}, type={self.type!r})"
        )

    def to_event(self) -> ErrorEvent:
        """The ``error`` server event describing this error."""
        from .server_events import ErrorDetail, ErrorEvent

        return ErrorEvent(
            error=ErrorDetail(
                type=self.type,
                code=self.code,
                message=self.message,
                param=self.param,
                event_id=self.event_id,
            )
        )
