"""Palaver: a self-hostable realtime voice-agent server speaking the OpenAI Realtime API."""

__version__ = "0.1.0"
