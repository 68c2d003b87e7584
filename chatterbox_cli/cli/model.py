"""Model selection shared by every command: check flags first, load (with a status) later."""

from __future__ import annotations

from pathlib import Path

from chatterbox_cli.output import Output


def checked_source(
    model: str,
    model_dir: Path | None,
    device: str,
    threads: int | None = None,
    quantize: str = "none",
    dtype: str = "auto",
    fast_decode: bool = False,
    overlap: bool = False,
):
    """Validate --model/--model-dir/--device and the runtime flags before anything heavy."""
    from chatterbox_cli.engine import ModelSource, Runtime, resolve_device

    source = ModelSource(model, model_dir)
    source.check()
    device = resolve_device(device)
    return source, device, Runtime(threads, quantize, dtype, fast_decode, overlap).check(device)


def load(out: Output, source, device: str, runtime=None):
    from chatterbox_cli.engine import load_engine

    if runtime is not None and runtime.quantize == "int8":
        out.warn("--quantize int8 trades fidelity for speed (see README: measured deviation)")
    with out.status(f"Loading {source.kind} from {source.describe()}…"):
        return load_engine(source, device, runtime)
