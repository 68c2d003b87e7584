"""Voice conversion: source speech -> S3 speech tokens -> S3Gen with the target voice's prompt.

One pass is exactly upstream `ChatterboxVC.generate()` (before its watermark). Upstream renders
a whole recording in one pass, whose attention grows with the square of its length; here a
long source is cut at its quietest stretch near `max_piece_s`, every piece converted with
`PAD_S` of context on both sides, and neighbours crossfaded over `CROSSFADE_S` around each
cut, so time grows linearly with length, memory stays bounded and pieces stream out as done.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chatterbox_cli.models import Family, get
from chatterbox_cli.runtime import limits
from chatterbox_cli.runtime.device import seed_everything, sync, upstream_quiet
from chatterbox_cli.runtime.errors import BadInput

SOURCE_SR = 16000
"""What the speech tokenizer reads (upstream `S3_SR`)."""
OUT_SR = 24000
MAX_PIECE_S = 20.0
"""Longest piece rendered in one S3Gen pass (the voice prompt's 10 s come on top)."""
PAD_S = 0.2
"""Context converted on each side of a cut, then dropped."""
CROSSFADE_S = 0.1
"""Neighbours overlap this long, centred on the cut (S3Gen's own fade-in is 40 ms)."""
SILENT_PEAK = 1e-4
"""A source whose peak stays below this (-80 dBFS) has nothing to convert."""
TARGET_LEN_S = 10.0
"""S3Gen's prompt: the first 10 s of a target clip (upstream `DEC_COND_LEN`)."""


@dataclass
class SourcePlan:
    """A source recording scanned once, block by block (memory independent of its length):
    its 16 kHz length, where it is cut, and how to read it again for the conversion."""

    source: str | Path | bytes
    label: str
    cuts: list[int]
    """Sample indices (16 kHz) from 0 to the end: `plan_pieces`'s cuts."""

    @property
    def duration_s(self) -> float:
        return self.cuts[-1] / SOURCE_SR

    def blocks(self) -> Iterator[np.ndarray]:
        from chatterbox_cli.runtime.recordings import resampled

        return resampled(self.source, SOURCE_SR, self.label)


def scan_source(
    source: str | Path | bytes,
    name: str | None = None,
    max_piece_s: float = MAX_PIECE_S,
    max_s: float | None = None,
    hint: str = "",
) -> SourcePlan:
    """Decode the whole source once, a block at a time (as upstream's `librosa.load` reads it),
    planning its cuts: one-line errors for missing, unreadable, empty, silent and over-long
    sources (past `max_s` seconds, `runtime.limits.AUDIO_S` by default; `hint` says how to
    raise it). Nothing is held but one piece's window."""
    from chatterbox_cli.runtime.recordings import resampled

    label = name or str(source)
    if max_s is None:
        max_s, hint = limits.AUDIO_S.value, f", or {limits.AUDIO_S.hint()}"
    planner = CutPlanner(max_piece_s)
    peak = 0.0
    with upstream_quiet():
        for block in resampled(source, SOURCE_SR, label, max_s, hint):
            if not np.isfinite(block).all():
                raise BadInput(f"{label} holds invalid samples (NaN); give a recording of speech")
            peak = max(peak, float(np.max(np.abs(block))))
            planner.feed(block)
    if planner.seen == 0:
        raise BadInput(f"{label} holds no audio; give a recording of speech")
    if peak < SILENT_PEAK:
        raise BadInput(f"{label} is silent; give a recording of speech")
    return SourcePlan(source, label, planner.finish())


def read_source(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """A whole source at 16 kHz mono float32 (checked as `scan_source` checks it)."""
    plan = scan_source(source, name)
    return np.concatenate(list(plan.blocks()))


class CutPlanner:
    """`plan_pieces` fed block by block: each piece at most `max_piece_s`, cut in the quietest
    200 ms of its second half. A cut is made as soon as more than a piece's worth is known
    past the last one, so only that window is ever held."""

    def __init__(self, max_piece_s: float = MAX_PIECE_S):
        self.limit = int(max_piece_s * SOURCE_SR)
        self.cuts = [0]
        self.held = np.zeros(0, dtype=np.float32)
        self.base = 0
        """Sample index of `held[0]`."""
        self.seen = 0

    def feed(self, block: np.ndarray) -> None:
        hop, window, limit = SOURCE_SR // 100, 20, self.limit
        self.held = np.concatenate([self.held, block])
        self.seen += len(block)
        while self.seen - self.cuts[-1] > limit:
            start = self.cuts[-1]
            lo, hi = start + limit // 2, start + limit
            stretch = self.held[lo - self.base : hi - self.base]
            frames = stretch[: (hi - lo) // hop * hop].reshape(-1, hop)
            energy = (frames.astype(np.float64) ** 2).mean(axis=1)
            cut = lo + int(np.argmin(np.convolve(energy, np.ones(window), "same"))) * hop + hop // 2
            self.cuts.append(cut)
            self.held, self.base = self.held[cut - self.base :], cut

    def finish(self) -> list[int]:
        return [*self.cuts, self.seen]


def plan_pieces(wav: np.ndarray, max_piece_s: float = MAX_PIECE_S) -> list[int]:
    """Cut points (sample indices, 16 kHz) from 0 to the end (`CutPlanner` over one block)."""
    planner = CutPlanner(max_piece_s)
    planner.feed(wav)
    return planner.finish()


def segments(blocks, cuts: list[int]) -> Iterator[tuple[np.ndarray, int, int]]:
    """(stretch, its first sample, the piece's end) for each piece between `cuts`, with `PAD_S`
    of context on both sides, taken from 16 kHz `blocks` as they come (only the current
    stretch is held)."""
    pad, n = int(PAD_S * SOURCE_SR), cuts[-1]
    held, base = np.zeros(0, dtype=np.float32), 0
    blocks = iter(blocks)
    for a, b in zip(cuts, cuts[1:], strict=False):
        lo, hi = max(0, a - pad), min(n, b + pad)
        while base + len(held) < hi:
            block = next(blocks, None)
            if block is None:
                raise BadInput("the source changed while it was being converted; run it again")
            held = np.concatenate([held, block])
        yield held[lo - base : hi - base], lo, b
        keep = max(0, b - pad)
        held, base = held[keep - base :], keep


@dataclass
class ConvertedPiece:
    """Finished output audio (24 kHz) of one stretch of the source, in order."""

    audio: np.ndarray
    index: int
    of: int
    source_s: float
    """Source seconds converted so far (progress)."""
    tokenize_s: float = 0.0
    flow_s: float = 0.0
    hifigan_s: float = 0.0

    @property
    def last(self) -> bool:
        return self.index == self.of - 1


@dataclass
class Converter:
    """An S3Gen (and the checkpoint's built-in voice) for conversion; no T3 is needed."""

    s3gen: Any
    family: Family
    device: str
    model_dir: Path | None = None
    builtin: dict | None = None
    """`conds.pt`'s S3Gen half, or None."""
    load_s: float = 0.0
    dtype: str = "float32"
    _watermarker: Any = field(default=None, repr=False)
    _checkpoint: str | None = field(default=None, repr=False)

    @property
    def sample_rate(self) -> int:
        return OUT_SR

    @property
    def watermarker(self):
        if self._watermarker is None:
            with upstream_quiet():
                import perth

                self._watermarker = perth.PerthImplicitWatermarker()
        return self._watermarker

    def checkpoint_id(self) -> str:
        from chatterbox_cli.sinks.provenance import checkpoint_id

        if self._checkpoint is None:
            self._checkpoint = checkpoint_id(self.model_dir, self.family.hub_repo)
        return self._checkpoint

    def amp(self):
        """Autocast for the flow (`--dtype`); HiFiGAN stays float32, as in `say`."""
        import contextlib

        import torch

        if self.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(self.device, dtype=getattr(torch, self.dtype))

    def target(self, spec) -> dict:
        """The S3Gen prompt for a resolved voice: built-in, a cached voice's `gen`, or a clip
        embedded as `ChatterboxVC.set_target_voice` does (its first 10 s at 24 kHz)."""
        import torch

        from chatterbox_cli.models.loading import release_speech_tokenizer
        from chatterbox_cli.runtime.errors import VoiceError
        from chatterbox_cli.runtime.recordings import read

        if spec.kind == "builtin":
            if self.builtin is None:
                raise VoiceError(
                    "this checkpoint has no built-in voice (conds.pt); pass --voice REF.wav or a "
                    "cached voice name"
                )
            return self.builtin
        if spec.kind == "cached":
            return {
                k: v.to(self.device) if torch.is_tensor(v) else v for k, v in spec.conds.gen.items()
            }
        with upstream_quiet(), torch.inference_mode():
            # upstream loads the whole clip and keeps 10 s; the second after them is read
            # only so the resampler ends past them (the kept samples are the same)
            wav, _, _ = read(spec.path, TARGET_LEN_S + 1.0, OUT_SR)
            ref = self.s3gen.embed_ref(
                wav[: int(TARGET_LEN_S * OUT_SR)], OUT_SR, device=self.device
            )
        release_speech_tokenizer(self.s3gen)
        return ref

    def render(self, wav16: np.ndarray, ref: dict, cfm_steps: int | None = None) -> tuple:
        """One S3Gen pass over a whole 16 kHz stretch, as `ChatterboxVC.generate()`: tokenize,
        flow (finalize), HiFiGAN, upstream's fade-in. (audio, tokenize_s, flow_s, hifigan_s)."""
        import torch

        s3gen = self.s3gen
        steps = cfm_steps or self.family.cfm_steps
        with upstream_quiet(), torch.inference_mode():
            t0 = time.perf_counter()
            audio = torch.from_numpy(wav16).float().to(self.device)[None,]
            tokens, _ = s3gen.tokenizer(audio)
            t1 = time.perf_counter()
            with self.amp():
                mels = s3gen.flow_inference(
                    tokens, ref_dict=ref, n_cfm_timesteps=steps, finalize=True
                )
            sync(self.device)
            t2 = time.perf_counter()
            wav, _ = s3gen.hift_inference(mels.to(dtype=s3gen.dtype), None)
            wav[:, : len(s3gen.trim_fade)] *= s3gen.trim_fade
            out = wav.squeeze(0).float().cpu().numpy()
        return out, t1 - t0, t2 - t1, time.perf_counter() - t2

    def convert(
        self,
        source: SourcePlan | np.ndarray,
        ref: dict,
        *,
        seed: int | None = None,
        cfm_steps: int | None = None,
        max_piece_s: float = MAX_PIECE_S,
    ) -> Iterator[ConvertedPiece]:
        """The converted source (a scanned `SourcePlan`, or a whole 16 kHz array) piece by
        piece, crossfaded at the cuts, as each is done. A source no longer than `max_piece_s`
        is one pass, exactly upstream's."""
        if isinstance(source, SourcePlan):
            cuts, blocks = source.cuts, source.blocks()
        else:
            cuts, blocks = plan_pieces(source, max_piece_s), [source]
        if seed is not None:
            seed_everything(seed)
        times: list[tuple] = []

        def render(segment):
            audio, *spent = self.render(segment, ref, cfm_steps)
            times.append(spent)
            return audio

        pieces = segments(blocks, cuts)
        if len(cuts) == 2:  # one pass, exactly upstream's
            stretch, _, n = next(pieces)
            audio = render(stretch)
            yield ConvertedPiece(audio, 0, 1, n / SOURCE_SR, *times[0])
            return
        for i, (audio, done) in enumerate(stitch(pieces, cuts[-1], render)):
            yield ConvertedPiece(audio, i, len(cuts) - 1, done, *times[i])


def stitch(pieces, n: int, render) -> Iterator[tuple[np.ndarray, float]]:
    """`render` (16 kHz stretch -> 24 kHz audio) over each of `segments`' stretches of a
    source of `n` samples; yields (output audio, source seconds done) in order, each piece
    placed at its source time and crossfaded with the next over `CROSSFADE_S` around the cut
    (the last `CROSSFADE_S` of a piece waits for the next). The output is as long as the
    source."""
    half = int(CROSSFADE_S * OUT_SR) // 2
    ratio = OUT_SR / SOURCE_SR
    n_out = round(n * ratio)
    held = np.zeros(0, dtype=np.float32)
    made = 0
    for stretch, lo, b in pieces:
        audio = render(stretch)
        last = b == n
        start = round(lo * ratio)
        end = n_out if last else round(b * ratio) + half
        want = end - start
        body = np.pad(audio, (0, max(0, want - len(audio))))[:want][made - start :].copy()
        if len(held):
            ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, len(held)))).astype(np.float32)
            body[: len(held)] = held * ramp[::-1] + body[: len(held)] * ramp
        keep = len(body) if last else len(body) - 2 * half
        held = body[keep:]
        made += keep
        yield body[:keep], b / SOURCE_SR


def check_model(model: str) -> Family:
    family = get(model)
    if family.vc_s3gen is None:
        raise BadInput(
            f"the {model} model does not convert voices; use --model standard (upstream's "
            "voice-conversion weights), turbo or nano"
        )
    return family


def load_converter(
    model: str, model_dir: Path | None, device: str, dtype: str = "float32"
) -> Converter:
    """S3Gen alone from a checkpoint folder or the hub (`vc_weights`), on `device`."""
    import torch

    from chatterbox_cli.models.loading import load_s3gen, torch_load
    from chatterbox_cli.models.source import vc_weights

    family = check_model(model)
    t0 = time.perf_counter()
    folder = vc_weights(family, model_dir)
    with upstream_quiet():
        s3gen = load_s3gen(folder / family.vc_s3gen, device, family.meanflow, strict=False)
    builtin = None
    if (folder / "conds.pt").is_file():  # as ChatterboxVC.from_local: its `gen` half
        gen = torch_load(folder / "conds.pt", map_location="cpu")["gen"]
        builtin = {k: v.to(device) if torch.is_tensor(v) else v for k, v in gen.items()}
    load_s = time.perf_counter() - t0
    return Converter(s3gen, family, device, folder, builtin, load_s, dtype)


def from_engine(engine) -> Converter:
    """A converter over a loaded engine's own S3Gen (no second copy): `Synthesizer.convert`
    and the server's `/v1/audio/conversions`."""
    family = check_model(engine.family.name)
    builtin = engine.builtin_voice.gen if engine.builtin_voice is not None else None
    return Converter(
        engine.tts.s3gen, family, engine.device, engine.model_dir, builtin, engine.load_s,
        engine.dtype, engine.watermarker,
    )  # fmt: skip
