"""The default conversation: ordered items, with the audio that belongs to them."""

from __future__ import annotations

from dataclasses import dataclass, field

from palaver.audio.formats import wire_duration_ms
from palaver.protocol.errors import ProtocolError
from palaver.protocol.items import ConversationItem


@dataclass
class StoredAudio:
    """Audio of one item, in the wire format it was received or sent in.

    ``marks`` (assistant audio) pairs each transcript piece with the audio position, in ms, where
    its speech begins, so a truncation can keep exactly the words that were heard.
    """

    format_type: str
    data: bytes | bytearray
    marks: list[tuple[float, str]] = field(default_factory=list)

    def heard_transcript(self, audio_end_ms: float) -> str:
        """The transcript of the first ``audio_end_ms`` of the audio.

        Whole pieces whose speech ended by then, plus the share of the next piece's words that
        matches the share of its audio played (speech runs at an even pace within a sentence)."""
        total = wire_duration_ms(self.format_type, len(self.data))
        out: list[str] = []
        for index, (start, text) in enumerate(self.marks):
            end = self.marks[index + 1][0] if index + 1 < len(self.marks) else total
            if audio_end_ms >= end:
                out.append(text)
                continue
            if audio_end_ms > start and end > start:
                words = text.split()
                heard = int(len(words) * (audio_end_ms - start) / (end - start))
                if heard:
                    lead = text[: len(text) - len(text.lstrip())]
                    out.append(lead + " ".join(words[:heard]))
            break
        return "".join(out).rstrip()


class Conversation:
    def __init__(self) -> None:
        self._items: list[ConversationItem] = []
        self._audio: dict[str, StoredAudio] = {}

    @property
    def items(self) -> list[ConversationItem]:
        return list(self._items)

    def last_id(self) -> str | None:
        return self._items[-1].id if self._items else None

    def __contains__(self, item_id: str) -> bool:
        return any(i.id == item_id for i in self._items)

    def get(self, item_id: str, *, event_id: str | None = None, param: str = "item_id") -> ConversationItem:
        for item in self._items:
            if item.id == item_id:
                return item
        raise ProtocolError(
            f"Item with item_id '{item_id}' not found.", code="item_not_found", param=param, event_id=event_id
        )

    def insert(
        self, item: ConversationItem, previous_item_id: str | None, *, event_id: str | None = None
    ) -> str | None:
        """Insert after ``previous_item_id`` ("root": at the start; None: at the end).

        Returns the id of the item now before it (None when first)."""
        assert item.id is not None
        if item.id in self:
            raise ProtocolError(
                f"Item with id '{item.id}' already exists.",
                code="item_already_exists",
                param="item.id",
                event_id=event_id,
            )
        if previous_item_id is None:
            before = self.last_id()
            self._items.append(item)
            return before
        if previous_item_id == "root":
            self._items.insert(0, item)
            return None
        for index, existing in enumerate(self._items):
            if existing.id == previous_item_id:
                self._items.insert(index + 1, item)
                return previous_item_id
        raise ProtocolError(
            f"Previous item with item_id '{previous_item_id}' not found.",
            code="item_not_found",
            param="previous_item_id",
            event_id=event_id,
        )

    def previous_of(self, item_id: str) -> str | None:
        """The id of the item before ``item_id`` (None when it is first)."""
        previous: str | None = None
        for item in self._items:
            if item.id == item_id:
                return previous
            previous = item.id
        return None

    def delete(self, item_id: str, *, event_id: str | None = None) -> None:
        item = self.get(item_id, event_id=event_id)
        self._items.remove(item)
        self._audio.pop(item_id, None)

    def audio(self, item_id: str) -> StoredAudio | None:
        return self._audio.get(item_id)

    def set_audio(self, item_id: str, audio: StoredAudio) -> None:
        self._audio[item_id] = audio
