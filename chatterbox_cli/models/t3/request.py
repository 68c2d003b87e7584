"""What a T3 decode is asked and reports, shared by every family's loops: the rows to decode
(`Row`), how the decode runs (`Decoding`) and what it measured (`DecodeStats`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatterbox_cli.models.sampling import SamplingParams

if TYPE_CHECKING:
    import threading

    import torch

    from chatterbox_cli.models.t3.prefix import Amp, Prefix


@dataclass
class DecodeStats:
    prefill_s: float = 0.0
    decode_s: float = 0.0
    steps: int = 0
    blocks: int = 0
    """Flash: blocks decoded (its `steps` are denoising forwards, several per block)."""
    stopped: bool = False
    """True when the model emitted its stop token, False when the cap ended the group."""


@dataclass
class Row:
    """One sequence of a batched decode, with its own sampling and its own RNG."""

    t3_cond: Any
    text_tokens: torch.Tensor
    params: SamplingParams
    max_new_tokens: int
    generator: torch.Generator | None = None
    cancelled: Callable[[], bool] | None = None
    """Polled once a step: True ends this row there (a server client left); the rest go on."""

    def ended(self) -> bool:
        return self.cancelled is not None and self.cancelled()


@dataclass
class Decoding:
    """How one decode runs, for all its rows: where its timings go, the voice's prefix cache
    (GPT-2 families), the autocast context, `--fast-decode`'s static cache (B=1) and the event
    that ends it early (a stopped stream)."""

    stats: DecodeStats = field(default_factory=DecodeStats)
    prefix: Prefix | None = None
    amp: Amp = contextlib.nullcontext
    fast: Any = None
    cancel: threading.Event | None = None
