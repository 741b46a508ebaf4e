"""backends/llm."""
