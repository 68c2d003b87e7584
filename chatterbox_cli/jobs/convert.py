"""Conversion jobs: source files and folders -> one converted file each + manifest/resume, as
`batch` keeps them (`sinks/manifest.py`): a file is skipped on rerun only when it exists and its
latest record says `ok` for the same source bytes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatterbox_cli.models.voices import AUDIO_SUFFIXES
from chatterbox_cli.post import DEFAULT_LUFS
from chatterbox_cli.post.asr import DEFAULT_MAX_WER, MISMATCH
from chatterbox_cli.runtime.errors import BadInput, DiskFull
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
    speed: float = 1.0
    max_wer: float = DEFAULT_MAX_WER
    """With a listener: an output heard this far off its source's words is flagged."""
    subtitles: str | None = None
    """With a listener: "srt" or "vtt" beside each output, from the words heard in it."""


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


def heard_subtitles(heard: dict, output: Path, fmt: str) -> Path:
    """Subtitles beside `output` from the words heard in it (`text.cues.heard_cues`)."""
    from chatterbox_cli.sinks.subtitles import write_subtitles
    from chatterbox_cli.text.cues import TimedWord, heard_cues
    from chatterbox_cli.text.languages import ENGLISH, LANGUAGES

    lang = LANGUAGES.get(heard.get("language") or "", ENGLISH)
    words = [TimedWord(w["text"], w["start"], w["end"]) for w in heard.get("words", ())]
    path = output.with_suffix(f".{fmt}")
    return write_subtitles(path, heard_cues(words, lang), fmt)


def listened(listener, source, output: Path, max_wer: float) -> dict:
    """A conversion heard back: the source's words (its own transcript, since a recording
    comes without a script) against what the output is heard saying; `asr-mismatch` past
    `max_wer`. Both are read a window at a time (`Listener.hear_all`)."""
    from chatterbox_cli.runtime.recordings import resampled
    from chatterbox_cli.sinks.verify import decoded

    pieces, sr = decoded(output)
    said, heard = listener.echo(resampled(source, 16000), 16000, pieces, sr)
    found = {"source_transcript": said.transcript, "language": said.language}
    flags = [MISMATCH] if heard.wer > max_wer else []
    return {"heard": found | heard.to_dict(), "flags": flags}


def run_convert(
    vc, items: list[SourceItem], cfg: ConvertConfig, manifest: Manifest, on_record, listener=None
):
    """Convert each source in turn; one manifest record per source (a bad one fails alone; a
    full disk ends the run, which a rerun finishes). With a `listener`, each output is heard
    back against its source (`listened`)."""
    for item in items:
        path = output_path(cfg.outdir, item.name, cfg.fmt.suffix)
        base = {"name": item.name, "source": str(item.path), "output": str(path)}
        try:
            done = save_converted(
                vc, item.path, path, cfg.fmt, cfg.voice, overwrite=True, seed=cfg.seed,
                lufs=cfg.lufs, cfm_steps=cfg.cfm_steps, max_piece_s=cfg.max_piece_s,
                speed=cfg.speed,
            )  # fmt: skip
        except DiskFull:
            raise
        except Exception as exc:  # a bad source fails its own record, not the job
            error = " ".join(str(exc).split()) or type(exc).__name__
            rec = {**base, "status": "failed", "error": error}
        else:
            rec = {
                **base,
                "status": "ok",
                "source_sha256": done.provenance["source_sha256"],
                "audio_s": round(done.audio_s, 3),
                "synth_s": round(done.synth_s, 3),
                "rtf": round(rtf(done.synth_s, done.audio_s) or 0, 4),
                "provenance": done.provenance,
            }
            if listener is not None:
                rec |= listened(listener, item.path, path, cfg.max_wer)
                if cfg.subtitles:
                    rec["subtitles"] = str(heard_subtitles(rec["heard"], path, cfg.subtitles))
        manifest.append(rec)
        on_record(rec)


MASTER_WHOLE_S = 600.0
"""Sources up to this long are leveled as one (loudness measured over all of the output, held
in memory); longer ones go to the file piece by piece, leveled as a stream is (the gain set by
the first piece), so memory stays the same whatever the length."""


@dataclass
class Converted:
    provenance: dict
    audio_s: float
    synth_s: float
    ttfa_s: float | None
    post_s: float = 0.0


def save_converted(
    vc, source, path: Path, fmt, voice: str | None, *, overwrite: bool = False,
    seed: int | None = None, lufs: float = DEFAULT_LUFS, cfm_steps: int | None = None,
    max_piece_s: float | None = None, on_piece=None, speed: float = 1.0,
) -> Converted:  # fmt: skip
    """`source` (a path, bytes or a scanned `SourcePlan`) converted into the file `path`, with
    its provenance inside, in memory bounded by `MASTER_WHOLE_S` whatever its length."""
    from chatterbox_cli.post.tempo import Stretcher
    from chatterbox_cli.sinks.files import open_writer
    from chatterbox_cli.synth.convert import MAX_PIECE_S, SourcePlan, scan_source
    from chatterbox_cli.synth.pipeline import StreamLeveler
    from chatterbox_cli.synth.request import RenderOptions, check_lufs, check_speed

    limit = max_piece_s or MAX_PIECE_S
    plan = source if isinstance(source, SourcePlan) else scan_source(source, None, limit)
    opts = dict(seed=seed, cfm_steps=cfm_steps, max_piece_s=limit)
    if plan.duration_s <= MASTER_WHOLE_S:
        audio = vc.convert(plan, voice, lufs=lufs, on_piece=on_piece, speed=speed, **opts)
        tags = provenance.tags(audio.provenance)
        write_file(path, audio.samples, audio.sample_rate, fmt, overwrite=overwrite, tags=tags)
        return Converted(
            audio.provenance, audio.duration_s, audio.synth_s, audio.ttfa_s, audio.post_s
        )
    made, run = vc.pieces(plan, voice, **opts)
    sr = vc.sample_rate
    levels = RenderOptions(lufs=check_lufs(lufs), pause_s=0)
    leveler = StreamLeveler(sr, [], levels, vc.converter.watermarker)
    stretcher = Stretcher(sr, check_speed(speed))
    t0, ttfa, frames = time.perf_counter(), None, 0
    needed = fmt.size(int(plan.duration_s / speed * sr), sr)
    with open_writer(path, sr, fmt, overwrite, provenance.tags(made), needed) as write:
        for piece in run:
            if on_piece:
                on_piece(piece)
            audio = leveler.level(stretcher.push(piece.audio, last=piece.last))
            write(audio)
            frames += len(audio)
            ttfa = ttfa if ttfa is not None else time.perf_counter() - t0
    return Converted(made, frames / sr, time.perf_counter() - t0, ttfa)
