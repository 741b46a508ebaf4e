"""backends/tts."""
