"""Model selection shared by every command: check flags first, load (with a status) later."""

from __future__ import annotations

from pathlib import Path

from chatterbox_cli.output import Output


def checked_source(model: str, model_dir: Path | None, device: str):
    """Validate --model/--model-dir/--device before anything heavy is loaded."""
    from chatterbox_cli.engine import ModelSource, resolve_device

    source = ModelSource(model, model_dir)
    source.check()
    return source, resolve_device(device)


def load(out: Output, source, device: str):
    from chatterbox_cli.engine import load_engine

    with out.status(f"Loading {source.kind} from {source.describe()}…"):
        return load_engine(source, device)
