"""Conversion jobs: source files and folders -> one converted file each + manifest/resume, as
`batch` keeps them (`sinks/manifest.py`): a file is skipped on rerun only when it exists and its
latest record says `ok` for the same source bytes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatterbox_cli.models.voices import AUDIO_SUFFIXES
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.runtime.metrics import rtf
from chatterbox_cli.sinks import provenance
from chatterbox_cli.sinks.files import write_file
from chatterbox_cli.sinks.manifest import Manifest, output_path, read_manifest


@dataclass(frozen=True)
class SourceItem:
    path: Path
    name: str
    """The output's name without suffix: the source's stem, made unique."""


def collect_sources(args: list[str]) -> list[SourceItem]:
    """Files as given and every audio file under a folder (sorted), with unique output names."""
    found: list[Path] = []
    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            inside = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
            if not inside:
                raise BadInput(f"folder {path} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise BadInput(f"source file {path} does not exist")
    items, taken = [], set()
    for path in dict.fromkeys(found):
        name, n = path.stem, 1
        while name in taken:
            n += 1
            name = f"{path.stem}-{n}"
        taken.add(name)
        items.append(SourceItem(path, name))
    return items


@dataclass
class ConvertConfig:
    outdir: Path
    fmt: Any
    voice: str | None = None
    seed: int | None = None
    lufs: float = -27.0
    cfm_steps: int | None = None
    max_piece_s: float | None = None
    overwrite: bool = False


def pending(items: list[SourceItem], cfg: ConvertConfig) -> list[SourceItem]:
    """What a rerun still has to do."""
    done = read_manifest(cfg.outdir)
    todo = []
    for item in items:
        path = output_path(cfg.outdir, item.name, cfg.fmt.suffix)
        rec = done.get(path.name)
        same = rec and rec.get("status") == "ok" and rec.get("source") == str(item.path)
        if cfg.overwrite or not (path.is_file() and same and _unchanged(rec, item.path)):
            todo.append(item)
    return todo


def _unchanged(rec: dict, path: Path) -> bool:
    return rec.get("source_sha256") == provenance.file_hash(path)


def run_convert(vc, items: list[SourceItem], cfg: ConvertConfig, manifest: Manifest, on_record):
    """Convert each source in turn; one manifest record per source (a bad one fails alone)."""
    for item in items:
        path = output_path(cfg.outdir, item.name, cfg.fmt.suffix)
        base = {"name": item.name, "source": str(item.path), "output": str(path)}
        t0 = time.perf_counter()
        try:
            audio = vc.convert(
                item.path, cfg.voice, seed=cfg.seed, lufs=cfg.lufs, cfm_steps=cfg.cfm_steps,
                max_piece_s=cfg.max_piece_s,
            )  # fmt: skip
            tags = provenance.tags(audio.provenance)
            write_file(path, audio.samples, audio.sample_rate, cfg.fmt, overwrite=True, tags=tags)
        except Exception as exc:  # a bad source fails its own record, not the job
            error = " ".join(str(exc).split()) or type(exc).__name__
            rec = {**base, "status": "failed", "error": error}
        else:
            synth_s = time.perf_counter() - t0
            rec = {
                **base,
                "status": "ok",
                "source_sha256": audio.provenance["source_sha256"],
                "audio_s": round(audio.duration_s, 3),
                "synth_s": round(synth_s, 3),
                "rtf": round(rtf(synth_s, audio.duration_s) or 0, 4),
                "provenance": audio.provenance,
            }
        manifest.append(rec)
        on_record(rec)
