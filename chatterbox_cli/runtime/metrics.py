"""Metrics that ride along with the audio: plain dataclasses, so `asdict` gives the JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


def rtf(synth_s: float, audio_s: float) -> float | None:
    """Real-time factor: seconds of compute per second of audio (lower is faster)."""
    return synth_s / audio_s if audio_s > 0 else None


@dataclass
class GroupMetrics:
    index: int
    text: str
    chars: int
    speech_tokens: int
    stopped: bool
    audio_s: float
    synth_s: float
    text_s: float
    t3_prefill_s: float
    t3_decode_s: float
    flow_s: float
    hifigan_s: float
    rtf: float | None
    flags: list[str] = field(default_factory=list)
    """What the guard still found in the kept attempt (`post/guard.py`)."""
    retries: int = 0
    transcript: str | None = None
    """With `asr`: what the recognizer heard in the kept attempt."""
    wer: float | None = None
    """Its word (or character) error rate against `text`."""
    words: tuple = ()
    """The recognizer's word timings (`post.asr.Word`), seconds from the group's start."""


@dataclass
class RunMetrics:
    model: str
    model_source: str
    device: str
    voice: str
    t3_file: str = ""
    """Which T3 spoke: one hub repo may hold several (Multilingual V2 and V3)."""
    output: str | None = None
    language: str = "en"
    load_s: float = 0.0
    voice_s: float = 0.0
    ttfa_s: float | None = None
    synth_s: float = 0.0
    post_s: float = 0.0
    """Join, loudness and watermark, after synthesis."""
    audio_s: float = 0.0
    rtf: float | None = None
    lufs_target: float | None = None
    lufs_measured: float | None = None
    peak_limited: bool = False
    seed: int | None = None
    groups: list[GroupMetrics] = field(default_factory=list)
    provenance: dict | None = None
    """What made the file (`sinks/provenance.py`); None for streams."""
    retries: int = 0
    """Groups synthesized again because the guard flagged them."""
    flags: list[str] = field(default_factory=list)
    """What was still flagged at the end, as "group N: flag"."""

    def to_dict(self) -> dict:
        return asdict(self)
