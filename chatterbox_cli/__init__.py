"""chatterbox-cli: batch and streaming speech synthesis over Resemble AI's Chatterbox models."""

__version__ = "0.1.0"
