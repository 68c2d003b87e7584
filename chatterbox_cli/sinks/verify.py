"""Checks on finished audio: Perth watermark, loudness, peak, duration, sample rate, our
provenance, and a batch directory against its manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from chatterbox_cli.runtime.device import dropping_stderr_lines, upstream_quiet
from chatterbox_cli.sinks.integrity import truncation
from chatterbox_cli.sinks.manifest import read_manifest

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".opus", ".ogg", ".m4b", ".m4a")
MP4_SUFFIXES = (".m4b", ".m4a", ".mp4")
CHECKED_S = 600.0
"""A file's watermark and loudness are measured on its first ten minutes (its length and peak
on all of it): hours of audio need not be held in memory to be verified."""
WATERMARK_MIN = 0.5
"""Perth's detector gives ~1.0 on marked audio and ~0.0 on clean speech-like audio or noise
(measured; NaN on silence, and 1.0 on a pure sine, so it is evidence, not proof)."""


@dataclass
class FileReport:
    path: str
    ok: bool = False
    error: str | None = None
    watermark: float | None = None
    sample_rate: int | None = None
    duration_s: float | None = None
    lufs: float | None = None
    peak_dbfs: float | None = None
    provenance: dict | None = None
    problems: list[str] = field(default_factory=list)
    heard: dict | None = None
    """With a script and a recognizer: its transcript and error rate (`post.asr.Heard`)."""
    subtitles: dict | None = None
    """With a subtitle file (beside it, or named): how far its cues drift from the speech."""

    def to_dict(self) -> dict:
        return asdict(self)


DECODER_NOISE = (b"Xing stream size off",)
"""What mpg123 (inside libsndfile) prints on file descriptor 2 about a cut MP3: we say it."""


def detector():

    with upstream_quiet():
        import perth

        return perth.PerthImplicitWatermarker()


def check_file(path: Path, marker) -> FileReport:
    import numpy as np
    import soundfile as sf

    from chatterbox_cli.sinks import provenance

    report = FileReport(str(path))
    try:
        if path.suffix.lower() in MP4_SUFFIXES:
            mono, sr, total, peak = _read_mp4(path, report)
        else:
            with dropping_stderr_lines(DECODER_NOISE):
                declared = sf.info(str(path)).frames
                mono, sr, total, peak = _read_blocks(path)
                report.provenance = provenance.read(path)
            report.error = truncation(path, declared, total)
    except Exception as exc:  # unreadable or damaged: reported, not raised
        report.error = f"unreadable: {' '.join(str(exc).split()) or type(exc).__name__}"
        return report
    if report.error:
        return report
    report.sample_rate, report.duration_s = sr, round(total / sr, 3)
    report.peak_dbfs = round(20 * np.log10(peak), 2) if peak > 0 else None
    if len(mono) >= 0.4 * sr:
        import pyloudnorm

        lufs = float(pyloudnorm.Meter(sr).integrated_loudness(mono.astype(np.float64)))
        report.lufs = round(lufs, 2) if np.isfinite(lufs) else None
    import torch

    with upstream_quiet(), torch.inference_mode():  # as audio.watermark: no autograd residue
        score = float(marker.get_watermark(mono, sample_rate=sr))
    report.watermark = round(score, 3) if np.isfinite(score) else None  # silence: NaN
    if not score >= WATERMARK_MIN:
        report.problems.append("no watermark")
    report.ok = not report.problems
    return report


def _read_blocks(path: Path):
    """(the first `CHECKED_S` as mono, sample rate, total samples, peak) of a sound file, read
    block by block: an hour-long file is measured, not held."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        blocks = (b.mean(axis=1) for b in f.blocks(65536, dtype="float32", always_2d=True))
        return _measure(blocks, f.samplerate)


def _read_mp4(path: Path, report: FileReport):
    """`_read_blocks` for an M4B (decoded piece by piece); its provenance from the comment."""
    from chatterbox_cli.sinks import m4b

    pieces, sr, tags = m4b.decode(path)
    report.provenance = m4b.provenance_of(tags)
    return _measure(pieces, sr)


def _measure(pieces, sr: int):
    import numpy as np

    kept, total, peak = [], 0, 0.0
    for x in pieces:
        if total < CHECKED_S * sr:
            kept.append(x)
        total += len(x)
        peak = max(peak, float(np.max(np.abs(x))) if len(x) else 0.0)
    mono = np.concatenate(kept) if kept else np.zeros(0, dtype=np.float32)
    return mono[: int(CHECKED_S * sr)], sr, total, peak


def manifest_problems(outdir: Path, reports: dict[str, FileReport]) -> list[str]:
    """Every `ok` row of OUTDIR/manifest.jsonl has its file, and the file matches the record."""

    problems = []
    for name, rec in sorted(read_manifest(outdir).items()):
        if rec.get("status") != "ok":
            continue
        report = reports.get(str(outdir / name))
        if report is None:
            problems.append(f"{name}: in the manifest as ok, but the file is missing")
            continue
        if report.error:
            continue
        if rec.get("audio_s") is not None and abs(report.duration_s - rec["audio_s"]) > 0.05:
            report.problems.append(f"duration {report.duration_s} s, manifest {rec['audio_s']} s")
        made = rec.get("provenance")
        if made is not None and report.provenance != made:
            report.problems.append("provenance differs from the manifest")
        report.ok = not report.problems
    return problems


def targets(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(audio files, batch directories with a manifest); a directory contributes its audio."""
    files, dirs = [], []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(x for x in p.iterdir() if x.suffix.lower() in AUDIO_SUFFIXES))
            if (p / "manifest.jsonl").is_file():
                dirs.append(p)
        else:
            files.append(p)
    return files, dirs


def decoded(path: Path):
    """(mono pieces, sample rate) of any file `check_file` reads, decoded as they are used
    (`verify --asr` listens to all of it)."""
    if path.suffix.lower() in MP4_SUFFIXES:
        from chatterbox_cli.sinks import m4b

        pieces, sr, _ = m4b.decode(path)
        return pieces, sr
    import soundfile as sf

    f = sf.SoundFile(str(path))

    def blocks():
        with f:
            yield from (b.mean(axis=1) for b in f.blocks(65536, dtype="float32", always_2d=True))

    return blocks(), f.samplerate


MAX_DRIFT_S = 0.5
"""Subtitles whose first cue starts, or last cue ends, further than this from the speech's
start or end fail; as do those leaving more than a tenth of the speech without a cue."""
FRAME_S = 0.02


def beside(path: Path) -> Path | None:
    """A subtitle file with the audio's name (`out/a.wav` -> `out/a.srt` or `out/a.vtt`)."""
    return next((p for s in (".srt", ".vtt") if (p := path.with_suffix(s)).is_file()), None)


def subtitle_drift(audio: Path, subtitles: Path, report: FileReport) -> None:
    """How `subtitles` line up with the speech in `audio` (frames louder than 40 dB under the
    loudest, decoded piece by piece), into `report` (a problem past `MAX_DRIFT_S`)."""
    import numpy as np

    from chatterbox_cli.sinks.subtitles import read_cues

    cues = read_cues(subtitles)
    pieces, sr = decoded(audio)
    n = int(FRAME_S * sr)
    levels, held = [], np.zeros(0, dtype=np.float32)
    for piece in pieces:
        held = np.concatenate([held, piece])
        k = len(held) // n
        frames = held[: k * n].reshape(k, n)
        levels.append(np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)))
        held = held[k * n :]
    level = np.concatenate(levels) if levels else np.zeros(0)
    loud = level > max(float(level.max(initial=0)) * 10 ** (-40 / 20), 1e-4)
    if not cues or not loud.any():
        report.subtitles = {"file": str(subtitles), "cues": len(cues)}
        report.problems.append("subtitles: no cues" if not cues else "subtitles: no speech")
        report.ok = False
        return
    frames = np.flatnonzero(loud)
    speech = (frames[0] * FRAME_S, (frames[-1] + 1) * FRAME_S)
    times = (np.arange(len(loud)) + 0.5) * FRAME_S
    covered = np.zeros(len(loud), dtype=bool)
    for cue in cues:
        covered |= (times >= cue.start) & (times < cue.end)
    uncovered = float(np.sum(loud & ~covered)) * FRAME_S
    drift = {
        "file": str(subtitles),
        "cues": len(cues),
        "start_drift_s": round(cues[0].start - speech[0], 3),
        "end_drift_s": round(cues[-1].end - speech[1], 3),
        "uncovered_s": round(uncovered, 3),
    }
    report.subtitles = drift
    if max(abs(drift["start_drift_s"]), abs(drift["end_drift_s"])) > MAX_DRIFT_S:
        report.problems.append(
            f"subtitles drift {drift['start_drift_s']:+.2f} s at the start, "
            f"{drift['end_drift_s']:+.2f} s at the end"
        )
    if uncovered > 0.1 * float(np.sum(loud)) * FRAME_S:
        report.problems.append(f"subtitles leave {uncovered:.1f} s of speech without a cue")
    report.ok = not report.problems
