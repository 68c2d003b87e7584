"""What the engine yields: one synthesized group (or a piece of one) with its metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chatterbox_cli.text.segment import TextGroup


@dataclass
class Synthesized:
    """One synthesized group, before post-processing, with the metrics that belong to it."""

    group: TextGroup
    audio: np.ndarray
    sample_rate: int
    speech_tokens: list[int]
    stopped: bool
    text_s: float
    t3_prefill_s: float
    t3_decode_s: float
    flow_s: float
    hifigan_s: float
    synth_s: float
    last: bool = True
    """False for the early pieces of a token-streamed group."""
    offset: int = 0
    """Samples of this group emitted in earlier pieces."""

    @property
    def duration_s(self) -> float:
        """The group's audio so far (all of it on the last piece)."""
        return (self.offset + len(self.audio)) / self.sample_rate
