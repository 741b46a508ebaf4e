"""backends/vad: voice activity detectors (Silero on onnxruntime; an energy fallback)."""
