"""Matching messages to transactions (RFC 3261 §17.1.3, §17.2.3, §9.2) and the transaction table.

Server side: a top Via branch that starts with the magic cookie and has
something after it is matched on (branch, sent-by, method) with ACK counted as
INVITE; any other branch (none, RFC 2543 style, or the bare cookie of RFC 4475
``badbranch``) falls back to the RFC 2543 rule: Request-URI, From tag,
Call-ID, CSeq number and top Via, plus the To tag (of the request, or for an
ACK of the response the transaction sent).
"""

from __future__ import annotations

from collections.abc import Iterator

from .headers import Via, parse_cseq, parse_name_addr, parse_via
from .message import Message, Request, Response
from .timers import DEFAULT_TIMERS, TimerConfig
from .transaction import (
    Action,
    ClientTransaction,
    Deliver,
    ServerTransaction,
    Transaction,
    TransactionError,
    client_transaction,
    server_transaction,
)

__all__ = [
    "MAGIC_COOKIE",
    "ClientKey",
    "ServerKey",
    "TransactionTable",
    "client_key",
    "is_rfc3261_branch",
    "server_key",
]

MAGIC_COOKIE = "z9hG4bK"

ClientKey = tuple[str, str]
ServerKey = tuple[object, ...]


def is_rfc3261_branch(branch: str | None) -> bool:
    """True for a branch made by an RFC 3261 element: the magic cookie and an identifier."""
    return branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE)


def _top_via(message: Message) -> Via:
    return parse_via(message.headers.get_all("Via")[0])


def _tag(message: Message, name: str) -> str | None:
    return parse_name_addr(message.headers.lines(name)[0], name).tag


def client_key(message: Message) -> ClientKey:
    """(top Via branch, CSeq method) of a client request or of a response to it (§17.1.3)."""
    branch = _top_via(message).branch or ""
    return branch, parse_cseq(message.headers.lines("CSeq")[0]).method


def server_key(request: Request, *, method: str | None = None) -> ServerKey:
    """The key of the server transaction ``request`` belongs to (ACK maps to INVITE).

    ``method`` overrides the request's method (a CANCEL looking for its INVITE).
    """
    via = _top_via(request)
    method = method or request.method
    if method == "ACK":
        method = "INVITE"
    if is_rfc3261_branch(via.branch):
        return ("3261", via.branch, via.sent_by, method)
    cseq = parse_cseq(request.headers.lines("CSeq")[0])
    call_id = request.headers.lines("Call-ID")[0]
    return ("2543", str(request.uri), _tag(request, "From"), call_id, cseq.number, via, method)


class TransactionTable:
    """The live transactions of one SIP element, with matching and one timer for them all.

    ``get_timer``/``handle_timer`` cover every transaction.  Terminated ones
    never match and are dropped by ``handle_timer``, ``add`` and ``collect``.
    """

    def __init__(self, timers: TimerConfig = DEFAULT_TIMERS) -> None:
        self.timers = timers
        self._clients: dict[ClientKey, ClientTransaction] = {}
        self._servers: dict[ServerKey, ServerTransaction] = {}

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    def __iter__(self) -> Iterator[Transaction]:
        yield from list(self._clients.values())
        yield from list(self._servers.values())

    def add(self, tx: Transaction) -> None:
        """Register ``tx``; TransactionError if one with the same key is live."""
        self.collect()
        if isinstance(tx, ClientTransaction):
            ckey = client_key(tx.request)
            if ckey in self._clients:
                raise TransactionError(f"client transaction {ckey} already exists")
            self._clients[ckey] = tx
        elif isinstance(tx, ServerTransaction):
            skey = server_key(tx.request)
            if skey in self._servers:
                raise TransactionError("server transaction already exists")
            self._servers[skey] = tx
        else:
            raise TypeError(f"not a transaction: {tx!r}")

    def match_response(self, response: Response) -> ClientTransaction | None:
        tx = self._clients.get(client_key(response))
        return None if tx is None or tx.terminated else tx

    def match_request(self, request: Request) -> ServerTransaction | None:
        key = server_key(request)
        tx = self._servers.get(key)
        if tx is None or tx.terminated:
            return None
        if key[0] == "3261":
            return tx
        if request.method == "ACK":
            sent = tx.last_response
            want = _tag(sent, "To") if sent is not None else None
        else:
            want = _tag(tx.request, "To")
        return tx if _tag(request, "To") == want else None

    def match_cancel(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL targets (§9.2), if it is live."""
        tx = self._servers.get(server_key(cancel, method="INVITE"))
        return None if tx is None or tx.terminated else tx

    def start_client(
        self, request: Request, now: float, *, reliable: bool, peer: object = None
    ) -> tuple[ClientTransaction, list[Action]]:
        """Create, register and start the client transaction for ``request``."""
        tx = client_transaction(request, reliable=reliable, timers=self.timers, peer=peer)
        self.add(tx)
        return tx, tx.start(now)

    def receive_request(
        self, request: Request, now: float, *, reliable: bool, peer: object = None
    ) -> tuple[ServerTransaction | None, list[Action]]:
        """Feed a request from the network.

        A match gets the request (retransmission or ACK); an unmatched ACK
        (the ACK of a 2xx) goes to the TU as ``Deliver`` with no transaction;
        anything else starts a new server transaction.
        """
        tx = self.match_request(request)
        if tx is not None:
            return tx, tx.receive_request(request, now)
        if request.method == "ACK":
            return None, [Deliver(request)]
        tx = server_transaction(request, reliable=reliable, timers=self.timers, peer=peer)
        self.add(tx)
        return tx, tx.start(now)

    def receive_response(
        self, response: Response, now: float
    ) -> tuple[ClientTransaction | None, list[Action]]:
        """Feed a response from the network; an unmatched one goes to the core as ``Deliver``."""
        tx = self.match_response(response)
        if tx is None:
            return None, [Deliver(response)]
        return tx, tx.receive_response(response, now)

    def get_timer(self) -> float | None:
        return min((t for tx in self for t in [tx.get_timer()] if t is not None), default=None)

    def handle_timer(self, now: float) -> list[tuple[Transaction, Action]]:
        out: list[tuple[Transaction, Action]] = []
        for tx in self:
            when = tx.get_timer()
            if when is not None and when <= now:
                out += [(tx, action) for action in tx.handle_timer(now)]
        self.collect()
        return out

    def collect(self) -> None:
        """Forget terminated transactions."""
        self._clients = {k: tx for k, tx in self._clients.items() if not tx.terminated}
        self._servers = {k: tx for k, tx in self._servers.items() if not tx.terminated}
