"""Silero VAD (v5/v6 ONNX model) on onnxruntime alone: no torch.

The ``silero-vad`` wheel carries ``silero_vad/data/silero_vad.onnx``, but its ``__init__``
imports torch, and its declared dependencies pull a multi-GiB torch. So it is installed with
``pip install --no-deps silero-vad`` and the file is located with
:func:`importlib.util.find_spec`, which does not execute the package.

One :class:`onnxruntime.InferenceSession` (one thread, CPU) serves every stream; running a
session from several threads at once is safe. Each :class:`SileroStream` keeps the model's
recurrent state and the last 64 samples of the previous frame (the model's context), and
pre-binds its input and output buffers to the session so a frame costs one model run and a
few in-place numpy operations (about 70-100 µs per 32 ms frame on one core).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from palaver.backends.base import BackendUnavailable

__all__ = ["INSTALL_HINT", "SileroStream", "SileroVAD", "find_model"]

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512
CONTEXT_SAMPLES = 64
_STATE_SHAPE = (2, 1, 128)
_LE_INT16 = np.dtype("<i2")
_SCALE = np.float32(1.0 / 32768.0)

INSTALL_HINT = (
    "install onnxruntime and the model with `pip install onnxruntime && pip install --no-deps silero-vad` "
    "(--no-deps: silero-vad declares torch, which is not needed), or use the energy VAD (PALAVER_VAD=energy)"
)


def find_model() -> Path:
    """Path of ``silero_vad.onnx`` inside the installed ``silero-vad`` package, without importing it."""
    try:
        spec = importlib.util.find_spec("silero_vad")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise BackendUnavailable(f"Silero VAD: the silero-vad package is not installed; {INSTALL_HINT}")
    for location in locations:
        path = Path(location) / "data" / "silero_vad.onnx"
        if path.is_file():
            return path
    raise BackendUnavailable(
        f"Silero VAD: silero_vad/data/silero_vad.onnx not found in {', '.join(locations)}; {INSTALL_HINT}"
    )


class SileroVAD:
    """:class:`~palaver.backends.base.VoiceActivityDetector`: Silero VAD, 16 kHz, 512-sample frames."""

    name = "silero"
    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        """Load the model from ``model_path``, or from the installed ``silero-vad`` package.

        Raises :class:`BackendUnavailable` (with how to install it) when onnxruntime or the
        model file is missing, or the file is not a Silero v5/v6 model."""
        path = find_model() if model_path is None else Path(model_path)
        if not path.is_file():
            raise BackendUnavailable(f"Silero VAD: model file {str(path)!r} not found; {INSTALL_HINT}")
        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendUnavailable(
                f"Silero VAD: onnxruntime is not installed ({exc}); {INSTALL_HINT}"
            ) from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise BackendUnavailable(f"Silero VAD: onnxruntime could not load {str(path)!r}: {exc}") from exc
        inputs = {i.name for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        if inputs != {"input", "state", "sr"} or outputs[:2] != ["output", "stateN"]:
            raise BackendUnavailable(
                f"Silero VAD: {str(path)!r} is not a Silero v5/v6 model "
                f"(inputs {sorted(inputs)}, outputs {outputs}); {INSTALL_HINT}"
            )
        self.model_path = path
        self._session: Any = session

    def open_stream(self) -> SileroStream:
        """A new detector state (for one audio stream)."""
        return SileroStream(self._session)


class SileroStream:
    """:class:`~palaver.backends.base.VadStream` of :class:`SileroVAD`. Not thread-safe."""

    def __init__(self, session: Any) -> None:
        self._session = session
        # Model input: 64 samples of context followed by the 512 new ones.
        self._input: npt.NDArray[np.float32] = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), np.float32)
        self._new = self._input[0, CONTEXT_SAMPLES:]
        self._context = self._input[0, :CONTEXT_SAMPLES]
        self._last = self._input[0, FRAME_SAMPLES:]  # the last 64 samples: the next frame's context
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self._output: npt.NDArray[np.float32] = np.zeros((1, 1), np.float32)
        # The recurrent state ping-pongs between two buffers: run k reads one, writes the other.
        self._states = (np.zeros(_STATE_SHAPE, np.float32), np.zeros(_STATE_SHAPE, np.float32))
        self._bindings = (self._bind(0), self._bind(1))
        self._turn = 0

    def _bind(self, src: int) -> Any:
        binding = self._session.io_binding()
        binding.bind_cpu_input("input", self._input)
        binding.bind_cpu_input("state", self._states[src])
        binding.bind_cpu_input("sr", self._sr)
        binding.bind_output(
            "output", "cpu", 0, np.float32, list(self._output.shape), self._output.ctypes.data
        )
        state_out = self._states[1 - src]
        binding.bind_output("stateN", "cpu", 0, np.float32, list(_STATE_SHAPE), state_out.ctypes.data)
        return binding

    def probability(self, frame: bytes) -> float:
        """Speech probability of exactly 512 16-bit little-endian mono samples (32 ms at 16 kHz)."""
        if len(frame) != 2 * FRAME_SAMPLES:
            raise ValueError(
                f"Silero VAD takes frames of {FRAME_SAMPLES} samples ({2 * FRAME_SAMPLES} bytes), "
                f"got {len(frame)} bytes"
            )
        self._context[:] = self._last
        np.multiply(np.frombuffer(frame, dtype=_LE_INT16), _SCALE, out=self._new)
        self._session.run_with_iobinding(self._bindings[self._turn])
        self._turn ^= 1
        return float(self._output[0, 0])

    def reset(self) -> None:
        """Forget the audio so far (recurrent state and context), as if newly opened."""
        self._input.fill(0.0)
        self._states[0].fill(0.0)
        self._states[1].fill(0.0)
        self._turn = 0
