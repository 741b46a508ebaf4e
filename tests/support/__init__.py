"""Test support: the scripted LLM, the server launcher and the wire-event validator."""
