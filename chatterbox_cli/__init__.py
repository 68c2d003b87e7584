"""chatterbox-cli: batch and streaming speech synthesis over Resemble AI's Chatterbox models.

The Python API (`Synthesizer`, `VoiceConverter`, `Audio`, `AudioChunk`) lives in
`chatterbox_cli.api`; it is imported on first use, so `import chatterbox_cli` (and
`chatterbox --help`) stays instant.
"""

__version__ = "0.1.0"
__all__ = ["Audio", "AudioChunk", "Synthesizer", "VoiceConverter", "__version__"]
_API = ("Audio", "AudioChunk", "Synthesizer", "VoiceConverter")


def __getattr__(name: str):
    if name in _API:
        from chatterbox_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'chatterbox_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
