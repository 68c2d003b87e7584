"""Batch jobs: inputs (CSV/TSV/JSONL/TXT) -> validated items -> safe names -> manifest/resume.

The manifest (`OUTDIR/manifest.jsonl`) is appended and flushed after each item's file has been
renamed into place, so a crash at any point loses at most the item in flight: on resume an item
is skipped only when its file exists and its latest record says `ok`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatterbox_cli.errors import BadInput
from chatterbox_cli.sinks import TEMP_PREFIX
from chatterbox_cli.text import decode_bytes, normalize, slug

FORMATS = ("csv", "tsv", "jsonl", "txt")
UNITS = ("line", "file")
MANIFEST = "manifest.jsonl"
MAX_NAME = 100
KNOWN = (
    "id",
    "text",
    "voice",
    "seed",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "cfg_weight",
    "exaggeration",
    "lufs",
)
NUMERIC = {
    "temperature": float,
    "top_p": float,
    "top_k": int,
    "min_p": float,
    "repetition_penalty": float,
    "cfg_weight": float,
    "exaggeration": float,
    "lufs": float,
}


@dataclass
class BatchItem:
    source: str
    line: int
    text: str
    id: str | None = None
    voice: str | None = None
    seed: int | None = None
    overrides: dict[str, float | int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass
class InvalidRow:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


def input_format(path: str, given: str | None) -> str:
    if given:
        if given not in FORMATS:
            raise BadInput(f"unknown --input-format {given!r}; use one of: {', '.join(FORMATS)}")
        return given
    if path == "-":
        return "txt"
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise BadInput(
            f"{path}: unknown input type .{suffix}; use .csv/.tsv/.jsonl/.txt or --input-format"
        )
    return suffix


def _records(text: str, fmt: str) -> list[tuple[int, dict | None, str | None]]:
    """(line, record, error) for each record; line is where the record starts (1-based)."""
    if fmt == "jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                out.append((n, None, f"invalid JSON ({exc.msg})"))
                continue
            out.append((n, obj, None) if isinstance(obj, dict) else (n, None, "not a JSON object"))
        return out
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    if reader.fieldnames is None:
        return []
    reader.fieldnames = [(f or "").strip().lower() for f in reader.fieldnames]
    if "text" not in reader.fieldnames:
        raise BadInput(f"no 'text' column (found: {', '.join(reader.fieldnames)})")
    out = []
    start = reader.line_num + 1
    for rec in reader:
        out.append((start, rec, None))
        start = reader.line_num + 1
    return out


def _item(source: str, line: int, rec: dict) -> BatchItem | InvalidRow:
    rec = {str(k).strip().lower(): v for k, v in rec.items() if k is not None}
    text = rec.get("text")
    if not isinstance(text, str) or not normalize(text):
        return InvalidRow(source, line, "empty text")
    item = BatchItem(source, line, text)
    ident = rec.get("id")
    item.id = str(ident) if ident not in (None, "") else None
    voice = rec.get("voice")
    item.voice = str(voice) if voice not in (None, "") else None
    for key, kind in (("seed", int), *NUMERIC.items()):
        value = rec.get(key)
        if value in (None, ""):
            continue
        try:
            number = kind(value) if kind is float else int(str(value).strip())
        except (TypeError, ValueError):
            return InvalidRow(
                source,
                line,
                f"{key} must be {'an integer' if kind is int else 'a number'}, not {value!r}",
            )
        if key == "seed":
            item.seed = number
        else:
            item.overrides[key] = number
    item.extra = {k: v for k, v in rec.items() if k not in KNOWN}
    return item


def read_inputs(
    inputs: list[str], fmt: str | None, unit: str, stdin: io.BufferedIOBase | None = None
) -> tuple[list[BatchItem], list[InvalidRow]]:
    """Every input, fully parsed and checked; nothing here needs a model."""
    if unit not in UNITS:
        raise BadInput(f"unknown --unit {unit!r}; use line or file")
    items: list[BatchItem] = []
    invalid: list[InvalidRow] = []
    for path in inputs:
        kind = input_format(path, fmt)
        if path == "-":
            data, source = (stdin.read() if stdin else b""), "stdin"
        else:
            p = Path(path)
            if not p.is_file():
                raise BadInput(f"input {path} does not exist")
            data, source = p.read_bytes(), p.name
        text = decode_bytes(data, source)
        if kind == "txt":
            if unit == "file":
                rows = [(1, {"text": text, "id": Path(path).stem if path != "-" else None}, None)]
            else:
                rows = [
                    (n, {"text": ln}, None)
                    for n, ln in enumerate(text.splitlines(), 1)
                    if ln.strip()
                ]
        else:
            try:
                rows = _records(text, kind)
            except BadInput as exc:
                raise BadInput(f"{source}: {exc}") from None
            except csv.Error as exc:
                raise BadInput(f"{source}: malformed {kind.upper()} ({exc})") from None
        for line, rec, err in rows:
            result = InvalidRow(source, line, err) if err else _item(source, line, rec)
            (invalid if isinstance(result, InvalidRow) else items).append(result)
    return items, invalid


def unused_knobs(items: list[BatchItem], family) -> tuple[list[BatchItem], list[InvalidRow]]:
    """Rows that set a sampling column the model does not use are invalid (as the flags are)."""
    from chatterbox_cli.families import users

    keep: list[BatchItem] = []
    invalid: list[InvalidRow] = []
    for item in items:
        unused = [k for k in item.overrides if k != "lufs" and k not in family.knobs]
        if unused:
            knob = unused[0]
            reason = (
                f"{knob} is not used by the {family.name} model "
                f"(models that use it: {', '.join(users(knob))})"
            )
            invalid.append(InvalidRow(item.source, item.line, reason))
        else:
            keep.append(item)
    return keep, invalid


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def safe_name(raw: str) -> str:
    """An id as a file stem: no separators, no control chars, no leading dots, length-limited."""
    name = unicodedata.normalize("NFKC", raw)
    name = _UNSAFE.sub("_", name).replace("..", "_").strip(" ._")
    return name[:MAX_NAME].rstrip(" ._")


def assign_names(items: list[BatchItem]) -> list[str]:
    """Give each item a unique, safe output stem; returns warnings about renamed duplicates."""
    warnings: list[str] = []
    width = max(4, len(str(len(items))))
    seen: dict[str, int] = {}
    for index, item in enumerate(items, 1):
        base = safe_name(item.id) if item.id else ""
        base = base or f"{index:0{width}d}-{slug(item.text, 30)}"
        name = base
        if name.lower() in seen:
            seen[base.lower()] += 1
            name = f"{base}-{seen[base.lower()]}"
            while name.lower() in seen:
                seen[base.lower()] += 1
                name = f"{base}-{seen[base.lower()]}"
            warnings.append(
                f"{item.source}:{item.line}: duplicate id {item.id or base!r} -> {name}"
            )
        seen.setdefault(name.lower(), 1)
        item.name = name
    return warnings


def output_path(outdir: Path, name: str, suffix: str) -> Path:
    path = outdir / f"{name}{suffix}"
    if path.resolve().parent != outdir.resolve():
        raise BadInput(f"refusing to write outside {outdir}: {name!r}")
    return path


def read_manifest(outdir: Path) -> dict[str, dict]:
    """Latest record per output file name; torn lines from a killed run are ignored."""
    latest: dict[str, dict] = {}
    path = outdir / MANIFEST
    if not path.is_file():
        return latest
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "output" in rec:
            latest[Path(rec["output"]).name] = rec
    return latest


def clean_temp_files(outdir: Path) -> int:
    removed = 0
    for tmp in outdir.glob(f"{TEMP_PREFIX}*"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


class Manifest:
    """Append-only JSONL; each record is flushed and fsynced before the next item starts."""

    def __init__(self, outdir: Path):
        self.path = outdir / MANIFEST
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        if self._fh.tell() > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    self._fh.write("\n")  # finish a line torn by a killed run

    def append(self, record: dict) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def row_seed(seed: int | None, group_index: int) -> int | None:
    """Each group of a seeded item gets its own, stable seed."""
    return None if seed is None else (seed * 1_000_003 + group_index) % 2**63


@dataclass
class BatchConfig:
    outdir: Path
    fmt: Any
    opts: Any
    voice: str | None = None
    seed: int | None = None
    batch_size: int = 8
    fail_fast: bool = False


@dataclass(eq=False)
class _Pending:
    item: BatchItem
    path: Path
    conds: Any
    voice_label: str
    seed: int | None
    lufs: float
    chunks: list = field(default_factory=list)
    remaining: int = 0
    failed: bool = False


def record(item: BatchItem, path: Path, status: str, **fields) -> dict:
    return {
        "id": item.id,
        "name": item.name,
        "output": str(path),
        "source": item.source,
        "line": item.line,
        "text": item.text,
        "status": status,
        **fields,
        **({"extra": item.extra} if item.extra else {}),
    }


def run_jobs(engine, items: list[BatchItem], cfg: BatchConfig, manifest: Manifest, on_record):
    """Synthesize `items` in batches of sentence groups; one manifest record per item."""
    from dataclasses import replace

    from chatterbox_cli import voices
    from chatterbox_cli.audio import join, master
    from chatterbox_cli.batched import Job, synthesize_batches
    from chatterbox_cli.engine import auto_max_tokens
    from chatterbox_cli.metrics import rtf
    from chatterbox_cli.pipeline import conditionals
    from chatterbox_cli.sinks import write_file
    from chatterbox_cli.text import split_groups

    voice_cache: dict[str | None, tuple[Any, str]] = {}

    def voice_for(value: str | None):
        if value not in voice_cache:
            spec = voices.resolve(value, engine.source.kind)
            voice_cache[value] = (conditionals(engine, spec), spec.label)
        return voice_cache[value]

    def fail(item: BatchItem, path: Path, exc: Exception) -> None:
        rec = record(item, path, "failed", error=" ".join(str(exc).split()) or type(exc).__name__)
        manifest.append(rec)
        on_record(rec)
        if cfg.fail_fast:
            raise StopBatch(rec["error"])

    def finish(p: _Pending) -> None:
        t0 = time.perf_counter()
        audio = join([c.audio for c in p.chunks], engine.sample_rate, pause_s=cfg.opts.pause_s)
        marked, _ = master(audio, engine.sample_rate, engine.watermarker, p.lufs)
        write_file(p.path, marked, engine.sample_rate, cfg.fmt, overwrite=True)
        audio_s = len(marked) / engine.sample_rate
        synth_s = sum(c.synth_s for c in p.chunks) + time.perf_counter() - t0
        rec = record(
            p.item,
            p.path,
            "ok",
            voice=p.voice_label,
            seed=p.seed,
            audio_s=round(audio_s, 3),
            synth_s=round(synth_s, 3),
            rtf=round(rtf(synth_s, audio_s) or 0, 4),
            speech_tokens=sum(len(c.speech_tokens) for c in p.chunks),
        )
        manifest.append(rec)
        on_record(rec)

    batches: list[list[tuple[_Pending, Job]]] = [[]]
    for item in items:
        path = output_path(cfg.outdir, item.name, cfg.fmt.suffix)
        try:
            conds, label = voice_for(item.voice or cfg.voice)
        except Exception as exc:  # a bad voice fails this row, not the job
            fail(item, path, exc)
            continue
        sampling = replace(
            cfg.opts.sampling,
            **{k: v for k, v in item.overrides.items() if k != "lufs"},
        )
        try:
            sampling.check()
        except BadInput as exc:
            fail(item, path, exc)
            continue
        groups = split_groups(item.text)
        seed = item.seed if item.seed is not None else cfg.seed
        pending = _Pending(
            item,
            path,
            conds,
            label,
            seed,
            item.overrides.get("lufs", cfg.opts.lufs),
            [],
            len(groups),
        )
        for group in groups:
            cap = cfg.opts.max_new_tokens or auto_max_tokens(group.text)
            if len(batches[-1]) >= cfg.batch_size:
                batches.append([])
            batches[-1].append(
                (pending, Job(group, conds, sampling, cap, row_seed(seed, group.index)))
            )

    batches = [b for b in batches if b]
    results = synthesize_batches(
        engine, ([job for _, job in batch] for batch in batches), cfm_steps=cfg.opts.cfm_steps
    )
    for batch, chunks in zip(batches, results, strict=True):
        if isinstance(chunks, Exception):
            for pending in dict.fromkeys(p for p, _ in batch):
                if not pending.failed:
                    pending.failed = True
                    fail(pending.item, pending.path, chunks)
            continue
        for (pending, _), chunk in zip(batch, chunks, strict=True):
            pending.chunks.append(chunk)
            pending.remaining -= 1
            if pending.remaining == 0 and not pending.failed:
                finish(pending)


class StopBatch(Exception):
    """--fail-fast: the first failure ends the job."""
