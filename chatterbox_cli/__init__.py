"""chatterbox-cli: batch and streaming speech synthesis over Resemble AI's Chatterbox models.

The Python API: `Synthesizer` (text to `Audio`, or a stream of `AudioChunk`s),
`VoiceConverter`, the `SpeechRequest` every front-end sends, the `Runtime` and `Lexicon` they
take, and `ChatterboxError` (what every refusal raises). Each is imported on first use, so
`import chatterbox_cli` (and `chatterbox --help`) stays instant.
"""

__version__ = "0.1.0"
_API = {
    "Audio": "chatterbox_cli.api",
    "AudioChunk": "chatterbox_cli.api",
    "Synthesizer": "chatterbox_cli.api",
    "VoiceConverter": "chatterbox_cli.api",
    "SpeechRequest": "chatterbox_cli.synth.request",
    "Runtime": "chatterbox_cli.runtime.device",
    "Lexicon": "chatterbox_cli.text.markup",
    "ChatterboxError": "chatterbox_cli.runtime.errors",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'chatterbox_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
