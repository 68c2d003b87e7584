"""What made a file: versions, model and checkpoint, voice, seed, sampling, text hash and the
flags that change output. Written inside each file (WAV INFO, FLAC/Vorbis comments, ID3 as a
JSON `comment`) and into the manifest/JSON; `chatterbox verify` reads it back."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chatterbox_cli.models.loading import cache_dir, torch_load
from chatterbox_cli.runtime.atomic import atomic_write
from chatterbox_cli.runtime.errors import DiskFull
from chatterbox_cli.text.segment import spoken, text_hash

KEY = "chatterbox-cli"
"""The comment's JSON is {KEY: record}: tells our files from others' comments."""


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Read once per process (every file of a batch records them)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("chatterbox-cli", "chatterbox-tts", "chatterbox-flash", "torch"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "unknown"
    return found


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes (first 16 hex digits), cached by path, size and mtime."""

    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    index = cache_dir() / "hashes.json"
    try:
        known = json.loads(index.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
        known[key] = digest.hexdigest()[:16]
        with contextlib.suppress(OSError, DiskFull), atomic_write(index) as fh:
            fh.write(json.dumps(known).encode())  # a cache: a full disk only costs a rehash
    return known[key]


def checkpoint_id(model_dir: Path | None, repo: str) -> str:
    """`repo@revision` for a hub snapshot; else a hash over the checkpoint's files."""
    if model_dir is None:
        return f"{repo}@unknown"
    model_dir = Path(model_dir)
    if model_dir.parent.name == "snapshots":
        return f"{repo}@{model_dir.name}"
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}:{file_hash(p)}\n".encode())
    return f"sha256:{digest.hexdigest()[:16]}"


def voice_id(spec, model_dir: Path | None) -> str:
    """The voice's source: `builtin:` + its conds.pt, or `clip:` + the reference clip (for a
    cached voice, the clip it was made from), so both ways to one voice read the same."""
    if spec.kind == "builtin":
        conds = Path(model_dir) / "conds.pt" if model_dir else None
        return f"builtin:{file_hash(conds)}" if conds and conds.is_file() else "builtin"
    if spec.kind == "cached":
        meta = torch_load(spec.path, map_location="cpu").get("meta") or {}
        source = meta.get("source_sha256")
        return f"clip:{source[:16]}" if source else f"cached:{file_hash(Path(spec.path))}"
    return f"clip:{file_hash(Path(spec.path))}"


def record(
    engine, *, voice: str, seed, sampling, text: str, cfm_steps, stream_tokens=None, said=None
):
    """The provenance record of one output; `said` is its groups (for the spoken text's hash
    next to the written text's)."""
    return {
        **versions(),  # a copy: the cached dict is never handed out
        "model": engine.source.kind,
        "t3_file": engine.family.t3_file,
        "checkpoint": engine.checkpoint_id(),
        "voice": voice,
        "seed": seed,
        "sampling": used(sampling, engine.family.knobs),
        "text_sha256": text_hash(text),
        "spoken_sha256": text_hash(spoken(said)) if said is not None else None,
        "flags": {
            "quantize": engine.quantize,
            "dtype": engine.dtype,
            "cfm_steps": cfm_steps or engine.family.cfm_steps,
            "stream_tokens": stream_tokens,
        },
    }


def used(sampling, knobs) -> dict | None:
    """The knobs the model used (the others are refused, so they never mattered)."""
    if sampling is None:
        return None
    return {k: v for k, v in asdict(sampling).items() if k in knobs}


def convert_record(conv, *, voice: str, seed, source_sha256: str, cfm_steps) -> dict:
    """The provenance record of a converted recording (`chatterbox convert`)."""
    return {
        **versions(),
        "task": "convert",
        "model": conv.family.name,
        "s3gen_file": conv.family.vc_s3gen,
        "checkpoint": conv.checkpoint_id(),
        "voice": voice,
        "seed": seed,
        "source_sha256": source_sha256,
        "flags": {"dtype": conv.dtype, "cfm_steps": cfm_steps or conv.family.cfm_steps},
    }


def tags(rec: dict[str, Any]) -> dict[str, str]:
    """soundfile string fields for `sinks.write_file`."""
    return {
        "software": f"chatterbox-cli {rec.get('chatterbox-cli', '')}".strip(),
        "comment": json.dumps({KEY: rec}, sort_keys=True, separators=(",", ":")),
    }


def read(path: Path) -> dict | None:
    """The record inside one of our files, or None."""
    import soundfile as sf

    with sf.SoundFile(path) as f:
        comment = f.comment or ""
    try:
        data = json.loads(comment)
    except ValueError:
        return None
    return data.get(KEY) if isinstance(data, dict) else None
