"""Subtitle files: SRT (SubRip) and WebVTT from timed cues (`text.cues`), written whole or not
at all (`runtime.atomic`)."""

from __future__ import annotations

from pathlib import Path

from chatterbox_cli.runtime.atomic import atomic_write
from chatterbox_cli.runtime.errors import BadInput, Spell, as_field
from chatterbox_cli.text.cues import Cue

FORMATS = ("srt", "vtt")


def subtitle_format(name: str | Path, what: str = "subtitles") -> str:
    """`srt` or `vtt` from a file name (its suffix) or a bare format name."""
    text = str(name)
    fmt = (Path(text).suffix or f".{text}").lstrip(".").lower()
    if fmt not in FORMATS:
        raise BadInput(f"{what}: write .srt or .vtt subtitles (not {text!r})")
    return fmt


def check_subtitles(
    value: str | Path | None, words: bool, heard: bool, spell: Spell = as_field
) -> str | None:
    """The subtitle format `value` (a file or a format name) asks for, or None; word cues need
    the words heard (`asr`)."""
    if value is None:
        if words:
            raise BadInput(f"{spell('subtitle_words')} shapes {spell('subtitles')}; add it")
        return None
    fmt = subtitle_format(value, spell("subtitles"))
    if words and not heard:
        raise BadInput(f"{spell('subtitle_words')} times each word as heard: add {spell('asr')}")
    return fmt


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _ms(cues: list[Cue]) -> list[tuple[int, int, str]]:
    """Cues in whole milliseconds, none empty or overlapping after rounding."""
    out: list[tuple[int, int, str]] = []
    for cue in cues:
        start = max(int(round(cue.start * 1000)), out[-1][1] if out else 0)
        end = int(round(cue.end * 1000))
        text = "\n".join(line for line in cue.text.splitlines() if line.strip())
        if end > start and text:
            out.append((start, end, text))
    return out


def render(cues: list[Cue], fmt: str) -> str:
    """The subtitle file's text."""
    blocks = []
    sep = "," if fmt == "srt" else "."
    for n, (start, end, text) in enumerate(_ms(cues), start=1):
        if fmt == "vtt":
            text = text.replace("-->", "->")  # the one sequence a WebVTT cue may not hold
        timing = f"{_clock(start / 1000, sep)} --> {_clock(end / 1000, sep)}"
        blocks.append(f"{n}\n{timing}\n{text}\n" if fmt == "srt" else f"{timing}\n{text}\n")
    head = "WEBVTT\n\n" if fmt == "vtt" else ""
    return head + "\n".join(blocks)


def write_subtitles(path: Path, cues: list[Cue], fmt: str | None = None, overwrite=True) -> Path:
    """`path` holding `cues` (UTF-8), written whole or not at all."""
    fmt = fmt or subtitle_format(path)
    data = render(cues, fmt).encode("utf-8")
    with atomic_write(path, overwrite, needed=len(data)) as fh:
        fh.write(data)
    return path


def save_subtitles(
    path: Path, segments: list, lang, words: bool = False, overwrite: bool = True
) -> Path:
    """Readable cues for `segments` (`text.cues.cues`), or with `words` one cue per heard word,
    into `path` (.srt or .vtt)."""
    from chatterbox_cli.text.cues import cues, word_cues

    made = word_cues(segments) if words else cues(segments, lang)
    return write_subtitles(path, made, overwrite=overwrite)


def read_cues(path: Path) -> list[Cue]:
    """The cues of an SRT or WebVTT file (times and text; styling and settings dropped)."""
    import re

    text = path.read_text(encoding="utf-8-sig", errors="replace").replace("\r\n", "\n")
    stamp = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{3})"
    timing = re.compile(rf"^\s*{stamp}\s*-->\s*{stamp}")
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip("\n").split("\n")
        for k, line in enumerate(lines):
            m = timing.match(line)
            if m:
                g = [int(x) if x else 0 for x in m.groups()]
                start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
                end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
                out.append(Cue(start, end, "\n".join(lines[k + 1 :])))
                break
    return out
