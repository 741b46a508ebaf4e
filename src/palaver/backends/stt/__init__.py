"""backends/stt."""
