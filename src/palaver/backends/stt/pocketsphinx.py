"""Speech to text with pocketsphinx and its bundled en-us model (offline, CPU).

Loading a ``Decoder`` takes 0.2-0.5 s and about 90 MB, so the backend keeps a small pool of
decoders: a stream checks one out when it opens and gives it back when it finishes, is
closed, or is garbage-collected. Decoders are created lazily (or up front by
:meth:`PocketsphinxSTT.warm_up`); at most ``max_idle`` are kept between streams.

The search is the forward tree plus the best-path pass, without the flat-lexicon pass:
that pass is what :meth:`finish` spends its time on (median 89 ms against 9.5 ms without it,
measured on ten flite sentences) and it changed no word of them (WER 4.5 % either way), while
every millisecond of it is added to the end of the caller's turn. Pass
``decoder_options={"fwdflat": True}`` to have it back.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from palaver.backends.base import BackendError, BackendUnavailable, Transcript

__all__ = ["PocketsphinxSTT", "PocketsphinxStream"]

SAMPLE_RATE = 16000


@dataclass
class _Slot:
    """A pooled decoder, its initial cepstral mean, and whether an utterance is still open on it."""

    decoder: Any
    initial_cmn: str = ""
    in_utterance: bool = False

    @classmethod
    def load(cls, decoder: Any) -> _Slot:
        return cls(decoder, initial_cmn=str(decoder.get_cmn(False)))

    def reset(self) -> None:
        """Forget the previous stream: close its utterance, restore the initial cepstral mean.

        Live CMN otherwise carries the last caller's channel into the next stream."""
        if self.in_utterance:  # abandoned by a stream that was dropped mid-utterance
            with contextlib.suppress(RuntimeError):
                self.decoder.end_utt()
            self.in_utterance = False
        if self.initial_cmn:
            self.decoder.set_cmn(self.initial_cmn)


class _DecoderPool:
    """Thread-safe pool of pocketsphinx decoders."""

    def __init__(self, factory: Callable[[], Any], max_idle: int) -> None:
        self._factory = factory
        self._max_idle = max_idle
        self._idle: list[_Slot] = []
        self._lock = threading.Lock()
        self.created = 0

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._idle)

    def acquire(self) -> _Slot:
        with self._lock:
            slot = self._idle.pop() if self._idle else None
        if slot is None:
            slot = _Slot.load(self._factory())  # slow: outside the lock
            with self._lock:
                self.created += 1
        else:
            slot.reset()
        return slot

    def release(self, slot: _Slot) -> None:
        """Return a decoder. Cheap and lock-protected: safe from a garbage-collection finalizer."""
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(slot)

    def add(self, slot: _Slot) -> None:
        with self._lock:
            self.created += 1
        self.release(slot)

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()


def _check_language(language: str | None) -> None:
    if language is None or language == "":
        return
    primary = language.replace("_", "-").split("-")[0].lower()
    if primary != "en":
        raise BackendError(
            f"pocketsphinx (bundled en-us model) cannot transcribe language {language!r}; only English",
            retryable=False,
            code="unsupported_language",
        )


_FILLERS = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+)$")


def words_of(segments: list[tuple[str, float]], text: str) -> tuple[tuple[str, float], ...]:
    """Words with their log posterior from the decoder's segmentation, if it matches ``text``."""
    words: list[tuple[str, float]] = []
    for word, prob in segments:
        if _FILLERS.match(word):
            continue
        base = re.sub(r"\(\d+\)$", "", word)  # alternate pronunciations: "the(2)"
        words.append((base, math.log(prob) if prob > 0 else -100.0))
    if " ".join(w for w, _ in words) != text:
        return ()  # the segmentation is of another pass than the text (live streams)
    return tuple(words)


class PocketsphinxStream:
    """One utterance on a pooled decoder. Use from one thread at a time."""

    def __init__(
        self, pool: _DecoderPool, slot: _Slot, *, narrowband: bool = False, live: bool = False
    ) -> None:
        self._slot: _Slot | None = slot
        # Live decoding of band-limited (8 kHz) audio with the wideband model is hopeless (its
        # running cepstral normalisation never settles: ~80 % WER on clean telephone speech),
        # while one pass over the whole utterance with batch normalisation is near perfect.
        # So narrowband audio is kept and decoded at finish(), without partials.
        self._narrowband = narrowband
        # Live: the final is the forward pass's hypothesis over all the audio (what the partials
        # grew into), not the rescored one, which may rewrite words a user has already seen.
        self._live = live and not narrowband
        self._held = bytearray()
        # Gives the decoder back if the stream is dropped without finish()/close().
        self._release = weakref.finalize(self, pool.release, slot)
        self._carry = b""
        self._samples = 0
        self._partial = ""
        if not narrowband:
            self._start(slot)

    def _start(self, slot: _Slot) -> None:
        try:
            slot.decoder.start_utt()
        except RuntimeError as exc:
            self._release()
            raise BackendError(f"pocketsphinx could not start an utterance: {exc}") from exc
        slot.in_utterance = True

    def push(self, pcm: bytes) -> str | None:
        """Feed 16 kHz 16-bit mono PCM; return the partial hypothesis if it changed."""
        slot = self._live_slot()
        data = self._carry + pcm if self._carry else pcm
        whole = len(data) - len(data) % 2
        self._carry = bytes(data[whole:])
        if whole == 0:
            return None
        if self._narrowband:
            self._held += data[:whole]
            self._samples += whole // 2
            return None
        try:
            slot.decoder.process_raw(bytes(data[:whole]), False, False)
            hyp = slot.decoder.hyp()
        except RuntimeError as exc:
            self.close()
            raise BackendError(f"pocketsphinx failed to decode audio: {exc}") from exc
        self._samples += whole // 2
        text = hyp.hypstr if hyp is not None else ""
        if text == self._partial:
            return None
        self._partial = text
        return text

    def finish(self) -> Transcript:
        """End the utterance and return the final transcript; the decoder goes back to the pool."""
        slot = self._live_slot()
        try:
            if self._narrowband:
                # Fresh feature state: what earlier utterances left in it ruins a batch pass.
                slot.decoder.reinit_feat()
                self._start(slot)
                if self._held:
                    slot.decoder.process_raw(bytes(self._held), False, True)
            forward = slot.decoder.hyp() if self._live else None
            slot.decoder.end_utt()
            slot.in_utterance = False
            hyp = forward if self._live else slot.decoder.hyp()
            segments = [(seg.word, seg.prob) for seg in slot.decoder.seg()]
        except RuntimeError as exc:
            raise BackendError(f"pocketsphinx failed to finish the utterance: {exc}") from exc
        finally:
            self.close()
        text = " ".join((hyp.hypstr if hyp is not None else "").split())
        return Transcript(
            text=text, audio_seconds=self._samples / SAMPLE_RATE, word_logprobs=words_of(segments, text)
        )

    def close(self) -> None:
        """Abandon the utterance (if any) and give the decoder back. Idempotent."""
        self._slot = None
        self._release()

    @property
    def closed(self) -> bool:
        return self._slot is None

    def _live_slot(self) -> _Slot:
        if self._slot is None:
            raise BackendError("this pocketsphinx stream is finished or closed", code="stream_closed")
        return self._slot

    def __enter__(self) -> PocketsphinxStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PocketsphinxSTT:
    """:class:`~palaver.backends.base.SpeechToText` on pocketsphinx's bundled en-us model, 16 kHz."""

    name = "pocketsphinx"
    sample_rate = SAMPLE_RATE

    def __init__(self, *, max_idle: int = 2, decoder_options: Mapping[str, Any] | None = None) -> None:
        """``max_idle``: decoders kept between streams (~90 MB each); ``decoder_options``:
        extra pocketsphinx ``Config`` settings (e.g. ``hmm``, ``lm``, ``dict``, ``fwdflat``)."""
        if max_idle < 0:
            raise ValueError("max_idle must be >= 0")
        self._options = {"fwdflat": False, **(decoder_options or {})}
        self._pool = _DecoderPool(self._load_decoder, max_idle)

    def _load_decoder(self) -> Any:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise BackendUnavailable(
                f"pocketsphinx is not installed ({exc}); install it with `pip install pocketsphinx`"
            ) from exc
        options: dict[str, Any] = {"loglevel": "FATAL", **self._options, "samprate": SAMPLE_RATE}
        try:
            return Decoder(**options)
        except Exception as exc:  # pocketsphinx raises RuntimeError/ValueError/KeyError on bad config
            raise BackendUnavailable(
                f"pocketsphinx could not load its model (options {self._options!r}): {exc}"
            ) from exc

    def warm_up(self) -> None:
        """Load one decoder now (at server start) unless one is already idle in the pool."""
        if self._pool.idle == 0:
            self._pool.add(_Slot.load(self._load_decoder()))

    def open_stream(
        self,
        *,
        language: str | None = None,
        prompt: str | None = None,
        narrowband: bool = False,
        live: bool = False,
    ) -> PocketsphinxStream:
        """Start an utterance. ``prompt`` is ignored (pocketsphinx has no prompt biasing)."""
        _check_language(language)
        return PocketsphinxStream(self._pool, self._pool.acquire(), narrowband=narrowband, live=live)

    @property
    def decoders_created(self) -> int:
        """Decoders loaded so far (for tests and metrics)."""
        return self._pool.created

    @property
    def idle_decoders(self) -> int:
        return self._pool.idle

    def close(self) -> None:
        """Drop the idle decoders (streams still open keep theirs until they end)."""
        self._pool.clear()
