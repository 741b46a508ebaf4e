"""Text to speech with espeak-ng, in-process through ctypes (offline, CPU, ~1000x real time).

The library comes from the ``espeakng-loader`` wheel (library and data bundled); without the
wheel, Debian's ``libespeak-ng.so.1`` (package ``libespeak-ng1``) is used. espeak-ng keeps
global state and is not thread-safe, so one process-wide engine serves every
:class:`EspeakTTS`, and a lock serialises all calls into it. ``sink`` runs while that lock
is held: it must hand chunks on quickly (e.g. to a queue), and must not call back into
:meth:`EspeakTTS.synthesize`.

OpenAI voice names map to distinct espeak-ng en-us variants:

======== ==================  ========  ==================
OpenAI   espeak-ng           OpenAI    espeak-ng
======== ==================  ========  ==================
alloy    en-us+klatt2        sage      en-us+f4
ash      en-us+m3            shimmer   en-us+f1
ballad   en-us+m2            verse     en-us+m4
coral    en-us+f2            marin     en-us+f3
echo     en-us+m1            cedar     en-us+klatt
======== ==================  ========  ==================

Any other name is tried as a raw espeak-ng voice name (``"en-gb"``, ``"en-us+f5"``, ``"de"``);
a name espeak-ng does not know falls back to the default voice (``alloy``) rather than failing.
``speed`` (clamped to 0.25-1.5) scales 175 words per minute; espeak-ng's floor is 80 wpm, so
speeds below ~0.46 all sound like 0.46.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from palaver.backends.base import BackendError, BackendUnavailable, ChunkSink

__all__ = ["BASE_WPM", "DEFAULT_VOICE", "VOICES", "EspeakTTS", "resolve_voice", "words_per_minute"]

#: OpenAI voice name -> espeak-ng voice (language + variant).
VOICES: dict[str, str] = {
    "alloy": "en-us+klatt2",
    "ash": "en-us+m3",
    "ballad": "en-us+m2",
    "coral": "en-us+f2",
    "echo": "en-us+m1",
    "sage": "en-us+f4",
    "shimmer": "en-us+f1",
    "verse": "en-us+m4",
    "marin": "en-us+f3",
    "cedar": "en-us+klatt",
}
DEFAULT_VOICE = "alloy"
#: Words per minute at speed 1.0.
BASE_WPM = 175
MIN_SPEED, MAX_SPEED = 0.25, 1.5

# espeak-ng API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_EE_OK = 0
#: The library's synthesis buffer; 60 ms is its minimum. ``chunk_ms`` re-chunks its output.
_BUFFER_MS = 60
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def resolve_voice(voice: str) -> str:
    """The espeak-ng voice name for an OpenAI voice name, or ``voice`` itself (a raw name)."""
    return VOICES.get(voice.strip().lower(), voice.strip())


def words_per_minute(speed: float) -> int:
    """espeak-ng rate for an OpenAI ``speed`` (clamped to 0.25-1.5; 1.0 -> 175 wpm)."""
    return round(BASE_WPM * min(max(speed, MIN_SPEED), MAX_SPEED))


def _library_candidates() -> list[tuple[str, str | None]]:
    """(library path, parent directory of espeak-ng-data or None for the built-in default)."""
    found: list[tuple[str, str | None]] = []
    try:
        import espeakng_loader
    except ImportError:
        pass
    else:
        found.append((espeakng_loader.get_library_path(), os.path.dirname(espeakng_loader.get_data_path())))
    found.append((ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1", None))
    return found


@dataclass
class _Job:
    """One synthesize() call: re-chunks the library's buffers into ``chunk_bytes`` pieces."""

    sink: ChunkSink
    chunk_bytes: int
    aborted: bool = False
    error: BaseException | None = None
    pending: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> None:
        self.pending += data
        while len(self.pending) >= self.chunk_bytes and not self.aborted:
            self._deliver(bytes(self.pending[: self.chunk_bytes]))
            del self.pending[: self.chunk_bytes]

    def finish(self) -> None:
        if self.pending and not self.aborted:
            self._deliver(bytes(self.pending))
        self.pending.clear()

    def _deliver(self, chunk: bytes) -> None:
        try:
            if self.sink(chunk) is False:
                self.aborted = True
        except BaseException as exc:  # re-raised by synthesize(), never lost inside the C callback
            self.error = exc
            self.aborted = True


class _Engine:
    """The process-wide espeak-ng instance. Every method must be called with ``lock`` held."""

    def __init__(self, lib: ctypes.CDLL, data_parent: str | None) -> None:
        self.lib = lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        path = data_parent.encode() if data_parent else None
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, path, 0)
        if rate <= 0:
            raise BackendUnavailable(f"espeak_Initialize failed ({rate}); data directory {data_parent!r}")
        self.sample_rate: int = rate
        self.lock = threading.Lock()
        self._job: _Job | None = None
        self._callback = _CALLBACK(self._on_audio)  # referenced for as long as the library may call it
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None
        self._known: dict[str, bool] = {}

    def _on_audio(self, wav: Any, count: int, events: Any) -> int:
        job = self._job
        if job is None or job.aborted:
            return 1
        if not wav or count <= 0:
            return 0
        data = ctypes.string_at(wav, count * 2)
        if sys.byteorder == "big":  # pragma: no cover - the wire wants little-endian
            samples = array.array("h", data)
            samples.byteswap()
            data = samples.tobytes()
        job.feed(data)
        return 1 if job.aborted else 0

    def select_voice(self, name: str) -> str:
        """Switch voice; an unknown name falls back to the default voice. Returns the voice set."""
        if name == self._voice:
            return name
        if self._known.get(name) is False or not self._set_voice(name):
            self._known[name] = False
            name = VOICES[DEFAULT_VOICE]
            if name != self._voice and not self._set_voice(name):
                raise BackendError(f"espeak-ng has no voice {name!r}", code="voice_unavailable")
        self._known[name] = True
        self._voice = name
        return name

    def _set_voice(self, name: str) -> bool:
        if not name or "\0" in name or len(name) > 100 or not name.isascii():
            return False
        return bool(self.lib.espeak_SetVoiceByName(name.encode("ascii")) == _EE_OK)

    def synth(self, text: str, wpm: int, job: _Job) -> None:
        self.lib.espeak_SetParameter(_PARAM_RATE, wpm, 0)
        data = text.replace("\0", " ").encode("utf-8") + b"\0"
        self._job = job
        try:
            rc = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if rc == _EE_OK:
                job.finish()
        finally:
            self._job = None
        if job.error is not None:
            raise job.error
        if rc != _EE_OK and not job.aborted:
            raise BackendError(f"espeak_Synth failed with error {rc}", retryable=True)


_engines: dict[str, _Engine] = {}
_engines_lock = threading.Lock()


def _load_engine(library_path: str | None, data_parent: str | None) -> _Engine:
    candidates = [(library_path, data_parent)] if library_path else _library_candidates()
    errors: list[str] = []
    with _engines_lock:
        for path, data in candidates:
            if path in _engines:
                return _engines[path]
            try:
                lib = ctypes.CDLL(path)
            except OSError as exc:
                errors.append(f"{path}: {exc}")
                continue
            engine = _Engine(lib, data)
            _engines[path] = engine
            return engine
    raise BackendUnavailable(
        "espeak-ng library not found; install the `espeakng-loader` wheel (pip) or Debian's "
        "`libespeak-ng1`. Tried: " + "; ".join(errors)
    )


class EspeakTTS:
    """:class:`~palaver.backends.base.TextToSpeech` on espeak-ng; 16-bit mono at 22050 Hz."""

    name = "espeak-ng"

    def __init__(
        self,
        *,
        chunk_ms: int = 20,
        library_path: str | None = None,
        data_path: str | None = None,
    ) -> None:
        """``chunk_ms``: size of the chunks handed to ``sink``. ``library_path``/``data_path``
        (the directory that contains ``espeak-ng-data``) pick a specific espeak-ng build."""
        if chunk_ms <= 0:
            raise ValueError("chunk_ms must be positive")
        self._engine = _load_engine(library_path, data_path)
        self.sample_rate: int = self._engine.sample_rate
        self._chunk_bytes = 2 * max(1, self.sample_rate * chunk_ms // 1000)

    def voice_for(self, voice: str) -> str:
        """The espeak-ng voice that :meth:`synthesize` uses for ``voice`` (after any fallback)."""
        with self._engine.lock:
            return self._engine.select_voice(resolve_voice(voice))

    def synthesize(self, text: str, *, voice: str, speed: float, sink: ChunkSink) -> None:
        """Speak ``text``; ``sink`` gets ~``chunk_ms`` PCM chunks as they are made and may
        return ``False`` to stop. Empty or blank text produces no audio."""
        if not text.strip():
            return
        job = _Job(sink=sink, chunk_bytes=self._chunk_bytes)
        with self._engine.lock:
            self._engine.select_voice(resolve_voice(voice))
            self._engine.synth(text, words_per_minute(speed), job)
