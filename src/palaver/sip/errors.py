"""The one exception the SIP message layer raises for peer garbage."""

from __future__ import annotations

from palaver.errors import SipError

__all__ = ["SipError", "SipParseError"]


class SipParseError(SipError):
    """Bytes from the peer that are not an acceptable SIP message.

    ``status``/``reason`` are what a server answers to a malformed *request*
    (400 with a reason naming the problem, 505, 413, 414, 501 ...).  When
    ``is_response`` is true the malformed message was a response: drop it.
    When the header section was readable, ``via``, ``from_``, ``to``,
    ``call_id`` and ``cseq`` hold the raw header values a transport needs to
    build that answer.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        is_response: bool = False,
        via: tuple[str, ...] = (),
        from_: str | None = None,
        to: str | None = None,
        call_id: str | None = None,
        cseq: str | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.is_response = is_response
        self.via = via
        self.from_ = from_
        self.to = to
        self.call_id = call_id
        self.cseq = cseq

    @property
    def can_answer(self) -> bool:
        """True when a response can be built: a request with Via, From, To, Call-ID and CSeq."""
        return (
            not self.is_response
            and bool(self.via)
            and None not in (self.from_, self.to, self.call_id, self.cseq)
        )
