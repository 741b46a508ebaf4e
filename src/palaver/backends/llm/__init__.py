"""Chat backends: the brain of the cascade (any OpenAI-compatible endpoint, or the offline echo)."""
