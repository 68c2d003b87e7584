"""`VoiceConverter`: `chatterbox convert` as a library call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from chatterbox_cli.api.audio import Audio
from chatterbox_cli.models.voices import VoiceSpec
from chatterbox_cli.post import DEFAULT_LUFS
from chatterbox_cli.runtime.device import Runtime
from chatterbox_cli.sinks.provenance import file_hash
from chatterbox_cli.synth.pipeline import StreamLeveler
from chatterbox_cli.synth.request import (
    RenderOptions,
    check_lufs,
    check_max_piece,
    check_speed,
)
from chatterbox_cli.synth.voices import VoiceStore


class VoiceConverter:
    """`chatterbox convert` as a library call: a source recording in a target voice, any
    length (cut at pauses, see `synth/convert.py`), leveled, watermarked, with provenance.
    Loads S3Gen alone; `Synthesizer.convert` uses the S3Gen its model already holds."""

    def __init__(
        self,
        model: str = "standard",
        model_dir: str | Path | None = None,
        device: str = "auto",
        *,
        dtype: str = "auto",
        threads: int | None = None,
        converter: Any = None,
    ):
        from chatterbox_cli.runtime.device import check_device_name, resolve_device
        from chatterbox_cli.synth.convert import check_model, load_converter

        if converter is None:
            check_model(model)
            asked = Runtime(threads=threads, dtype=dtype).check_flags()
            check_device_name(device)
            device = resolve_device(device)
            runtime = asked.check(device)
            runtime.apply()
            path = Path(model_dir) if model_dir else None
            converter = load_converter(model, path, device, runtime.dtype)
        self.converter = converter
        self.voices = VoiceStore(converter.family.name, converter.target, converter.model_dir)

    @property
    def sample_rate(self) -> int:
        return self.converter.sample_rate

    def voice(self, voice: str | Path | None = None) -> tuple[VoiceSpec, Any]:
        """The target voice (None: the checkpoint's own; a clip; a `.pt`; a cached name),
        resolved and embedded once."""
        found = self.voices.get(voice)
        return found.spec, found.conds

    def _source(self, source, max_piece_s: float):
        """(the scanned source, its hash for provenance); a `SourcePlan` is taken as it is."""
        import hashlib

        from chatterbox_cli.synth.convert import SourcePlan, scan_source

        if not isinstance(source, SourcePlan):
            label = "standard input" if isinstance(source, bytes) else None
            source = scan_source(source, label, max_piece_s)
        if isinstance(source.source, bytes):
            return source, hashlib.sha256(source.source).hexdigest()[:16]
        return source, file_hash(Path(source.source))

    def pieces(
        self, source: str | Path | bytes, voice: str | Path | None = None, *,
        seed: int | None = None, cfm_steps: int | None = None, max_piece_s: float | None = None,
    ):  # fmt: skip
        """(provenance, the raw converted pieces as they are done): before loudness and mark."""
        from chatterbox_cli.sinks import provenance
        from chatterbox_cli.synth.convert import MAX_PIECE_S

        family = self.converter.family
        steps = family.check_cfm_steps(cfm_steps)
        limit = check_max_piece(max_piece_s or MAX_PIECE_S)
        spec, ref = self.voice(voice)
        plan, digest = self._source(source, limit)
        made = provenance.convert_record(
            self.converter, voice=provenance.voice_id(spec, self.converter.model_dir),
            seed=seed, source_sha256=digest, cfm_steps=steps,
        )  # fmt: skip
        run = self.converter.convert(plan, ref, seed=seed, cfm_steps=steps)
        return made, run

    def convert(
        self, source: str | Path | bytes, voice: str | Path | None = None, *,
        seed: int | None = None, lufs: float = DEFAULT_LUFS, cfm_steps: int | None = None,
        max_piece_s: float | None = None, on_piece: Callable[[Any], None] | None = None,
        speed: float = 1.0,
    ) -> Audio:  # fmt: skip
        """The whole recording converted, at `speed` (0.5-2, pitch kept), loudness-normalized
        and watermarked."""
        import time

        from chatterbox_cli.post.audio import master
        from chatterbox_cli.post.tempo import Stretcher

        check_lufs(lufs)
        stretcher = Stretcher(self.sample_rate, check_speed(speed))
        made, run = self.pieces(
            source, voice, seed=seed, cfm_steps=cfm_steps, max_piece_s=max_piece_s
        )
        t0 = time.perf_counter()
        parts, ttfa = [], None
        for piece in run:
            parts.append(piece.audio)
            ttfa = ttfa if ttfa is not None else time.perf_counter() - t0
            if on_piece:
                on_piece(piece)
        t1 = time.perf_counter()
        parts = [stretcher.push(p, last=i == len(parts) - 1) for i, p in enumerate(parts)]
        cuts = np.cumsum([len(p) for p in parts])[:-1].tolist()  # Perth a piece at a time
        wm = self.converter.watermarker
        out, loud = master(np.concatenate(parts), self.sample_rate, wm, lufs, cuts)
        return Audio(
            samples=out, sample_rate=self.sample_rate, provenance=made, ttfa_s=ttfa,
            synth_s=t1 - t0, post_s=time.perf_counter() - t1, lufs=loud.measured_lufs,
            peak_limited=loud.peak_limited,
        )  # fmt: skip

    def stream(
        self, source: str | Path | bytes, voice: str | Path | None = None, *,
        seed: int | None = None, lufs: float = DEFAULT_LUFS, cfm_steps: int | None = None,
        max_piece_s: float | None = None, on_piece: Callable[[Any], None] | None = None,
        speed: float = 1.0,
    ) -> Iterator[np.ndarray]:  # fmt: skip
        """Leveled, watermarked audio piece by piece as each is converted (gain fixed by the
        first piece, as `Synthesizer.stream`), the pieces stretched as one signal."""
        from chatterbox_cli.post.tempo import Stretcher

        opts = RenderOptions(lufs=check_lufs(lufs), pause_s=0)
        stretcher = Stretcher(self.sample_rate, check_speed(speed))
        _made, run = self.pieces(
            source, voice, seed=seed, cfm_steps=cfm_steps, max_piece_s=max_piece_s
        )
        leveler = StreamLeveler(self.sample_rate, [], opts, self.converter.watermarker)
        for piece in run:
            if on_piece:
                on_piece(piece)
            yield leveler.level(stretcher.push(piece.audio, last=piece.last))
