"""Batch inputs: CSV/TSV/JSONL/TXT -> validated items (file:line reasons) -> safe, unique names.

Nothing here needs a model: every row is checked before anything loads.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatterbox_cli.models.sampling import KNOBS, SamplingParams
from chatterbox_cli.runtime import limits
from chatterbox_cli.runtime.errors import BadInput, ChatterboxError
from chatterbox_cli.synth.request import SpeechRequest
from chatterbox_cli.text.segment import decode_bytes, normalize, slug

FORMATS = ("csv", "tsv", "jsonl", "txt")
UNITS = ("line", "file")
MAX_NAME = 100
NUMERIC: dict[str, type] = {
    **{knob: type(getattr(SamplingParams(), knob)) for knob in KNOBS},
    "lufs": float,
}
"""The request's numeric fields a row may set as columns (`row_request`)."""
KNOWN = ("id", "text", "voice", "language", "seed", *NUMERIC)


@dataclass
class BatchItem:
    source: str
    line: int
    text: str
    id: str | None = None
    voice: str | None = None
    language: str | None = None
    seed: int | None = None
    overrides: dict[str, float | int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    plain: bool = False
    """The text is one of `book`'s groups, markup and lexicon already applied."""


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
    language = rec.get("language")
    item.language = str(language).strip() if language not in (None, "") else None
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
            data, source = (limits.read_stream(stdin, "stdin") if stdin else b""), "stdin"
        else:
            p = Path(path)
            if not p.is_file():
                raise BadInput(f"input {path} does not exist")
            data, source = limits.read_file(p, path), p.name
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
        if len(items) + len(invalid) + len(rows) > limits.ROWS.value:
            raise BadInput(
                f"{source}: over {limits.ROWS.value:g} rows in one run; split the input, "
                f"or {limits.ROWS.hint()}"
            )
        for line, rec, err in rows:
            result = InvalidRow(source, line, err) if err else _item(source, line, rec)
            (invalid if isinstance(result, InvalidRow) else items).append(result)
    return items, invalid


def row_request(item: BatchItem, base: SpeechRequest) -> SpeechRequest:
    """The row's request: the run's options, then its own columns (voice, language, seed,
    sampling knobs, lufs). A book's rows are plain text: its markup and lexicon were applied
    before."""
    return base.replace(
        text=item.text,
        voice=item.voice or base.voice,
        language=item.language or base.language,
        seed=item.seed if item.seed is not None else base.seed,
        markup=not item.plain,
        lexicon=None if item.plain else base.lexicon,
        **item.overrides,
    )


def check_rows(
    items: list[BatchItem], family, base: SpeechRequest
) -> tuple[list[BatchItem], list[InvalidRow]]:
    """Rows whose request does not plan (a knob the model does not use or out of range, a
    language it can't speak) are invalid: the one check every front-end makes, before
    anything loads. Sets `item.language` to the code."""
    keep: list[BatchItem] = []
    invalid: list[InvalidRow] = []
    for item in items:
        try:
            plan = row_request(item, base).plan(family)
        except BadInput as exc:
            invalid.append(InvalidRow(item.source, item.line, str(exc)))
            continue
        item.language = plan.language.code
        keep.append(item)
    return keep, invalid


def markup(items: list[BatchItem], model: str) -> tuple[list[BatchItem], list[InvalidRow]]:
    """Rows whose `[pause]`/`[voice]` markup is malformed, or names a voice that does not
    resolve, are invalid (`text/markup.py`)."""
    from chatterbox_cli.models import voices
    from chatterbox_cli.text.markup import parse
    from chatterbox_cli.text.markup import voices as named

    keep: list[BatchItem] = []
    invalid: list[InvalidRow] = []
    for item in items:
        try:
            for name in sorted(named(parse(item.text))):
                voices.resolve(name, model)
        except ChatterboxError as exc:
            invalid.append(InvalidRow(item.source, item.line, str(exc)))
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
