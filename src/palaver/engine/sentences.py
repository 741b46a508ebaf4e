"""Split streaming LLM text into speakable pieces, as early as is natural."""

from __future__ import annotations

import re

# A sentence ends at . ! ? … or a newline, followed by whitespace.
_END = re.compile(r"[.!?…]+[\"')\]]*\s+|\n+")
# A long run without a sentence end may be cut at a clause boundary.
_CLAUSE = re.compile(r"[,;:—]\s+")


class SentenceChunker:
    """Accumulates text deltas and hands out pieces whose concatenation is exactly the input.

    ``max_chars`` bounds a piece, so a model that never ends a sentence still gets spoken
    (and the audio buffered for one piece stays bounded).
    """

    def __init__(self, *, first_clause_chars: int = 60, max_chars: int = 240) -> None:
        self._buf = ""
        self._first = True
        self._first_clause_chars = first_clause_chars
        self._max_chars = max_chars

    def push(self, text: str) -> list[str]:
        self._buf += text
        pieces: list[str] = []
        while True:
            piece = self._take()
            if piece is None:
                return pieces
            pieces.append(piece)
            self._first = False

    def flush(self) -> str | None:
        piece, self._buf = self._buf, ""
        return piece if piece else None

    def _take(self) -> str | None:
        match = _END.search(self._buf)
        if match is not None:
            return self._cut(match.end())
        # The first piece may be cut at a clause so first audio comes sooner.
        limit = self._first_clause_chars if self._first else self._max_chars
        if len(self._buf) >= limit:
            clauses = list(_CLAUSE.finditer(self._buf))
            if clauses:
                return self._cut(clauses[-1].end())
            if len(self._buf) >= self._max_chars:
                space = self._buf.rfind(" ", 0, self._max_chars)
                return self._cut(space + 1 if space > 0 else self._max_chars)
        return None

    def _cut(self, end: int) -> str:
        piece, self._buf = self._buf[:end], self._buf[end:]
        return piece
