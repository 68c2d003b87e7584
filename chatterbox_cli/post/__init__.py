"""After synthesis: join, loudness, watermark, and the runaway guard."""

DEFAULT_LUFS = -27.0
"""Upstream Chatterbox normalizes reference audio to -27 LUFS; outputs match that level (kept
here, light, so `chatterbox --help` shows it without numpy)."""
