"""What every bench mode is handed: the loaded engine and settings (`BenchContext`) and one
text (`BenchItem`); the harness and the modes both read them, so they live apart from both."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatterbox_cli.synth.engine import Engine
from chatterbox_cli.synth.request import DEFAULT_STREAM_TOKENS, RenderOptions
from chatterbox_cli.text.languages import spoken_length

TOKENS_PER_CHAR = 1.7
"""~15 characters/s of speech at 25 tokens/s: what `--tokens auto` assumes."""


@dataclass(frozen=True)
class BenchItem:
    name: str
    text: str
    language: str = "en"


@dataclass
class BenchContext:
    engine: Engine
    conds: Any
    seed: int = 0
    tokens: str | None = None
    """None (natural stop), "auto", or an integer as a string."""
    opts: RenderOptions = field(default_factory=RenderOptions)
    items: int = 16
    """How many texts the throughput (batch) mode processes per run."""
    batch_size: int | None = None
    stream_tokens: int = DEFAULT_STREAM_TOKENS
    baseline: Engine | None = None
    """The engine upstream mode runs on: an unquantized one when --quantize is set."""

    def budget(self, item: BenchItem) -> int | None:
        """Speech tokens every mode must make for `item`, or None when not fixed."""
        if self.tokens is None:
            return None
        if self.tokens == "auto":
            return max(1, round(TOKENS_PER_CHAR * spoken_length(item.text)))
        return int(self.tokens)
