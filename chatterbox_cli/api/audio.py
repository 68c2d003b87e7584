"""What the Python API returns: a finished text (`Audio`) and a piece of a stream
(`AudioChunk`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.runtime.metrics import GroupMetrics
from chatterbox_cli.sinks.files import FORMATS, AudioFormat, write_file
from chatterbox_cli.sinks.provenance import tags
from chatterbox_cli.text.cues import Segment


@dataclass
class Audio:
    """A finished text: mono float32 samples, loudness-normalized and watermarked."""

    samples: np.ndarray
    sample_rate: int
    provenance: dict
    """What made it (model, checkpoint, voice, seed, sampling, text hash); `save` embeds it."""
    groups: list[GroupMetrics] = field(default_factory=list)
    ttfa_s: float | None = None
    synth_s: float = 0.0
    post_s: float = 0.0
    lufs: float | None = None
    """Measured loudness before normalization (None: too short to measure)."""
    peak_limited: bool = False
    segments: list[Segment] = field(default_factory=list)
    """When each sentence group is said (seconds; with `asr`, each heard word too): what
    subtitles are made from (`text.cues`)."""

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def flags(self) -> list[str]:
        """What the guard still flagged after the retries, as "group N: flag"."""
        return [f"group {g.index}: {flag}" for g in self.groups for flag in g.flags]

    def save(
        self, path: str | Path, format: str | None = None, overwrite: bool = False,
        subtype: str = "PCM_16",
    ) -> Path:  # fmt: skip
        """Write atomically in `format` (default: the suffix; .wav .flac .mp3 .opus .ogg), with
        the provenance inside; an existing file needs `overwrite`."""

        path = Path(path)
        fmt = format or path.suffix.lower().lstrip(".") or "wav"
        if fmt not in FORMATS:
            raise BadInput(f"cannot write .{fmt} files; use .wav, .flac, .mp3, .opus or .ogg")
        audio_fmt = AudioFormat(fmt, subtype).check()
        return write_file(
            path, self.samples, self.sample_rate, audio_fmt, overwrite, tags(self.provenance)
        )


@dataclass(frozen=True)
class AudioChunk:
    """A piece of a stream, ready to play: leveled, watermarked mono float32 samples, the
    pause before its group at its start."""

    samples: np.ndarray
    sample_rate: int
    text: str
    """The sentence group this piece belongs to."""
    index: int
    """That group's place in the text (0-based)."""
    last: bool = True
    """The group's last piece (every piece is, unless `stream_tokens` cuts groups up)."""
    segment: Segment | None = None
    """On a group's last piece: when the group is said, in seconds from the stream's start."""

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @classmethod
    def of(cls, made, samples: np.ndarray, segment: Segment | None = None) -> AudioChunk:
        """The public piece of an engine record (`synth.chunk.Synthesized`)."""
        group = made.group
        return cls(samples, made.sample_rate, group.text, group.index, made.last, segment)
