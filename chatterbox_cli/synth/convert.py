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


def read_source(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """A source recording at 16 kHz mono float32, read as upstream reads it (`librosa.load`);
    `bytes` are a file's contents (stdin). One-line errors for missing, unreadable, empty and
    silent sources."""
    import io
    import warnings

    import librosa

    label = name or str(source)
    if isinstance(source, bytes):
        if not source:
            raise BadInput(f"{label} is empty; pipe in a WAV/FLAC/OGG recording")
        target: Any = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise BadInput(f"source file {path} does not exist")
        target = str(path)
    try:
        with warnings.catch_warnings(), upstream_quiet():
            warnings.simplefilter("ignore")
            wav, _ = librosa.load(target, sr=SOURCE_SR)
    except Exception as exc:
        raise BadInput(
            f"cannot read {label} as audio ({type(exc).__name__}); give a WAV/FLAC/MP3/OGG file"
        ) from None
    if wav.size == 0:
        raise BadInput(f"{label} holds no audio; give a recording of speech")
    if not np.isfinite(wav).all() or float(np.max(np.abs(wav))) < SILENT_PEAK:
        raise BadInput(f"{label} is silent; give a recording of speech")
    return wav.astype(np.float32, copy=False)


def plan_pieces(wav: np.ndarray, max_piece_s: float = MAX_PIECE_S) -> list[int]:
    """Cut points (sample indices, 16 kHz) from 0 to the end: each piece at most
    `max_piece_s`, cut in the quietest 200 ms of its second half."""
    n = len(wav)
    limit = int(max_piece_s * SOURCE_SR)
    hop = SOURCE_SR // 100
    window = 20
    cuts = [0]
    while n - cuts[-1] > limit:
        start = cuts[-1]
        lo, hi = start + limit // 2, start + limit
        frames = wav[lo:hi][: (hi - lo) // hop * hop].reshape(-1, hop)
        energy = np.convolve((frames.astype(np.float64) ** 2).mean(axis=1), np.ones(window), "same")
        cuts.append(lo + int(np.argmin(energy)) * hop + hop // 2)
    return [*cuts, n]


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
        import librosa
        import torch

        from chatterbox_cli.models.loading import release_speech_tokenizer
        from chatterbox_cli.runtime.errors import VoiceError

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
            wav, _ = librosa.load(str(spec.path), sr=OUT_SR)
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
        wav16: np.ndarray,
        ref: dict,
        *,
        seed: int | None = None,
        cfm_steps: int | None = None,
        max_piece_s: float = MAX_PIECE_S,
    ) -> Iterator[ConvertedPiece]:
        """The converted source piece by piece, crossfaded at the cuts, as each is done.
        A source no longer than `max_piece_s` is one pass, exactly upstream's."""
        if seed is not None:
            seed_everything(seed)
        cuts = plan_pieces(wav16, max_piece_s)
        if len(cuts) == 2:
            audio, tok_s, flow_s, voc_s = self.render(wav16, ref, cfm_steps)
            yield ConvertedPiece(audio, 0, 1, len(wav16) / SOURCE_SR, tok_s, flow_s, voc_s)
            return
        times: list[tuple] = []

        def render(segment):
            audio, *spent = self.render(segment, ref, cfm_steps)
            times.append(spent)
            return audio

        for i, (audio, done) in enumerate(stitch(wav16, cuts, render)):
            yield ConvertedPiece(audio, i, len(cuts) - 1, done, *times[i])


def stitch(wav16: np.ndarray, cuts: list[int], render) -> Iterator[tuple[np.ndarray, float]]:
    """`render` (16 kHz stretch -> 24 kHz audio) over each piece between `cuts` with `PAD_S`
    of context on both sides; yields (output audio, source seconds done) in order, each piece
    placed at its source time and crossfaded with the next over `CROSSFADE_S` around the cut
    (the last `CROSSFADE_S` of a piece waits for the next). The output is as long as the
    source."""
    pad = int(PAD_S * SOURCE_SR)
    half = int(CROSSFADE_S * OUT_SR) // 2
    ratio = OUT_SR / SOURCE_SR
    n_out = round(len(wav16) * ratio)
    n = len(cuts) - 1
    held = np.zeros(0, dtype=np.float32)
    made = 0
    for i in range(n):
        a, b = cuts[i], cuts[i + 1]
        lo, hi = max(0, a - pad), min(len(wav16), b + pad)
        audio = render(wav16[lo:hi])
        start = round(lo * ratio)
        end = n_out if i == n - 1 else round(b * ratio) + half
        want = end - start
        body = np.pad(audio, (0, max(0, want - len(audio))))[:want][made - start :].copy()
        if len(held):
            ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, len(held)))).astype(np.float32)
            body[: len(held)] = held * ramp[::-1] + body[: len(held)] * ramp
        keep = len(body) if i == n - 1 else len(body) - 2 * half
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
