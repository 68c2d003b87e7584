"""What the engine yields: one synthesized group (or a piece of one) with its metrics, and the
token cap a group gets when none is given."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chatterbox_cli.text.languages import spoken_length
from chatterbox_cli.text.segment import TextGroup

TOKENS_PER_SECOND = 25
MAX_TOKENS_CEILING = 900
"""36 s of speech: well under upstream's hidden 1000-token (40 s) limit."""


def auto_max_tokens(text: str) -> int:
    """A cap no real group should reach: ~6 letters of speech a second (slow speech, in
    `spoken_length`, so a Han character counts as a syllable) plus one second of slack."""

    letters = spoken_length(text)
    return min(MAX_TOKENS_CEILING, TOKENS_PER_SECOND + math.ceil(letters * TOKENS_PER_SECOND / 6))


@dataclass
class AudioChunk:
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
