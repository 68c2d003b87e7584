"""Loading: the process's loaded weights (shared) and the engines made over them (each with
settings of its own)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatterbox_cli.models.source import ModelSource, hub_snapshot
from chatterbox_cli.runtime.device import (
    Runtime,
    check_device_name,
    configure_device,
    resolve_device,
    upstream_quiet,
)
from chatterbox_cli.runtime.errors import ModelUnavailable, Spell, as_field
from chatterbox_cli.synth.engine import Engine


@dataclass(frozen=True)
class Loaded:
    """A family's upstream TTS object as loaded, which engines share (the weights are the
    memory; an engine's settings are its own)."""

    tts: Any
    model_dir: Path
    load_s: float


LOADED: dict[tuple[ModelSource, str, str], Loaded] = {}
"""The process's loaded weights by (source, device, quantization): loading is what costs
(seconds, gigabytes), so a second engine of the same weights reuses them."""


def check_source(
    model: str, model_dir: Path | None, device: str, runtime: Runtime | None = None,
    spell: Spell = as_field,
) -> tuple[ModelSource, str, Runtime]:  # fmt: skip
    """Validate the model, its weights, the device and the runtime settings before anything
    heavy (every front-end's one check): the values first, then the weights (before torch
    loads: seconds), then the device."""

    source = ModelSource(model, model_dir)
    asked = (runtime or Runtime()).check_flags(spell)
    source.family.check_runtime(asked, spell)
    check_device_name(device)
    source.check(spell)
    device = resolve_device(device, spell)
    return source, device, asked.check(device, spell)


def load_engine(
    source: ModelSource, device: str = "auto", runtime: Runtime | None = None, share=False
) -> Engine:
    """An engine for `source` on `device` with `runtime`'s settings. The weights are loaded
    once per process and quantization and shared by every engine made from them; loading
    another family first drops the others (a process holds one family at a time) unless
    `share` (the server, holding several)."""
    source.check()
    family = source.family
    device = resolve_device(device)
    runtime = (runtime or Runtime()).check(device)
    family.check_runtime(runtime)
    runtime.apply()
    key = (source, device, runtime.quantize)
    if key not in LOADED:
        for other in [k for k in LOADED if k[0].kind != source.kind and not share]:
            del LOADED[other]
        LOADED[key] = _load(source, device, runtime.quantize)
    loaded = LOADED[key]
    return Engine(
        tts=loaded.tts,
        device=device,
        source=source,
        load_s=loaded.load_s,
        builtin_voice=loaded.tts.conds,
        dtype=runtime.dtype,
        quantize=runtime.quantize,
        fast_decode=runtime.fast_decode,
        overlap=runtime.overlap,
        batch_s3gen=runtime.batch_s3gen,
        model_dir=loaded.model_dir,
    )


def unload(source: ModelSource) -> None:
    """Forget `source`'s loaded weights (they are freed once no engine holds them)."""
    for key in [k for k in LOADED if k[0] == source]:
        del LOADED[key]


def _load(source: ModelSource, device: str, quantize: str) -> Loaded:
    configure_device(device)
    t0 = time.perf_counter()
    with upstream_quiet():
        import perth

        if perth.PerthImplicitWatermarker is None:
            raise ModelUnavailable(
                "Perth's watermarker failed to import (it needs pkg_resources); "
                "reinstall with `pip install 'setuptools<81'`"
            )
        model_dir = source.model_dir or hub_snapshot(source)
        tts = source.family.load(model_dir, device, quantize)
    return Loaded(tts, Path(model_dir), time.perf_counter() - t0)
