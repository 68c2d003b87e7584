"""The one output layer: human text, progress and tables on stderr; data (JSON) on stdout."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chatterbox_cli.runtime.metrics import RunMetrics


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass
class Output:
    quiet: bool = False
    json: bool = False
    console: Console = field(
        default_factory=lambda: Console(
            file=sys.stderr, highlight=False, width=None if sys.stderr.isatty() else 160
        )
    )  # bound now, so upstream_quiet() redirecting sys.stderr cannot swallow our progress;
    # in a log file (CI) tables get 160 columns instead of being cut at 80

    noted: set[str] = field(default_factory=set)
    """One-time notices already shown."""

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(escape(message))

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[yellow]warning:[/] {escape(message)}")

    def error(self, message: str) -> None:
        line = " ".join(str(message).split()) or "failed"
        self.console.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)

    def data(self, obj) -> None:
        """Machine output: one JSON document per line on stdout."""
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def spoken(self, rows) -> None:
        """`--show-text`: each row is (label, language, written text, its groups), shown as
        one group a line under the row's label, or one JSON document a row."""
        from chatterbox_cli.text.segment import spoken, text_hash

        for label, language, text, groups in rows:
            if not self.json:
                if label:
                    print(f"# {label}")
                for g in groups:
                    print(f"{g.index}\t{f'[voice:{g.voice}] ' if g.voice else ''}{g.text}")
                continue
            said = [{"index": g.index, "text": g.text, "voice": g.voice} for g in groups]
            self.data({"id": label, "language": language, "text_sha256": text_hash(text),
                       "spoken_sha256": text_hash(spoken(groups)), "groups": said})  # fmt: skip
        sys.stdout.flush()

    @contextlib.contextmanager
    def status(self, message: str) -> Iterator[None]:
        if self.quiet or not self.console.is_terminal:
            self.info(message)
            yield
            return
        with self.console.status(message):
            yield

    @contextlib.contextmanager
    def progress(self, total: int, label: str) -> Iterator[Callable[..., None]]:
        """A progress bar on stderr, or a line per step in a log; yields `advance(what=None)`."""
        if self.quiet:
            yield lambda *a, **k: None
            return
        if not self.console.is_terminal:
            done, start = 0, time.monotonic()

            def log_step(*args, **_kwargs) -> None:
                nonlocal done
                done += 1
                note = f" {args[0]}" if args and isinstance(args[0], str) else ""
                self.info(f"{label}: {done}/{total}{note} ({time.monotonic() - start:.0f} s)")

            yield log_step
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=total)

            def advance(*_args, **_kwargs) -> None:
                bar.advance(task)  # the bar shows counts, not each step's name

            yield advance

    @contextlib.contextmanager
    def batch_progress(
        self, total: int, verb: str = "Synthesizing", status: Callable[[dict], str] | None = None
    ) -> Iterator[Callable[[dict], None]]:
        """Items done/total, audio produced, running RTF and ETA, on stderr; `status(rec)`
        adds the caller's own words (a book's chapters)."""
        if self.quiet:
            yield lambda rec: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        audio = synth = 0.0
        if not self.console.is_terminal:
            done, start = 0, time.monotonic()

            def log_record(rec: dict) -> None:
                nonlocal audio, synth, done
                done += 1
                audio += rec.get("audio_s") or 0.0
                synth += rec.get("synth_s") or 0.0
                spent = time.monotonic() - start
                eta = spent / done * (total - done)
                extra = f" · {status(rec)}" if status else ""
                self.info(
                    f"{verb} {done}/{total}{extra} · {_duration(audio)} audio · "
                    f"{spent:.0f} s elapsed, ETA {eta:.0f} s"
                )

            yield log_record
            return
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[audio]} audio · RTF {task.fields[rtf]}"),
            TimeRemainingColumn(),
            console=self.console,
        ) as bar:
            task = bar.add_task(verb, total=total, audio=_duration(0), rtf="-")

            def update(rec: dict) -> None:
                nonlocal audio, synth
                audio += rec.get("audio_s") or 0.0
                synth += rec.get("synth_s") or 0.0
                rate = f"{synth / audio:.2f}" if audio else "-"
                words = f"{verb} · {status(rec)}" if status else verb
                bar.update(task, advance=1, audio=_duration(audio), rtf=rate, description=words)

            yield update

    def say_report(self, m: RunMetrics) -> None:
        if self.json:
            self.data(m.to_dict())
        if self.quiet:
            return
        table = Table(title="Synthesis", title_justify="left", show_edge=False)
        for col in ("#", "chars", "tokens", "audio s", "synth s", "RTF", "retries", "flags"):
            table.add_column(col, justify="left" if col == "flags" else "right")
        for g in m.groups:
            tokens = f"{g.speech_tokens}" + ("" if g.stopped else "*")
            table.add_row(
                str(g.index + 1),
                str(g.chars),
                tokens,
                _fmt(g.audio_s),
                _fmt(g.synth_s),
                _fmt(g.rtf),
                str(g.retries),
                escape(", ".join(g.flags)) or "-",
            )
        self.console.print(table)
        for g in m.groups:
            if g.transcript is not None:
                self.console.print(
                    f"#{g.index + 1} heard ({g.wer:.0%} off): {escape(g.transcript)}"
                )
        totals = Table.grid(padding=(0, 2))
        totals.add_column(style="bold")
        totals.add_column()
        for key, value in (
            ("output", m.output or "-"),
            ("device", m.device),
            ("model", f"{m.model} ({m.model_source}, {m.t3_file})"),
            ("voice", m.voice),
            ("language", m.language),
            ("model load", f"{_fmt(m.load_s)} s"),
            ("voice prep", f"{_fmt(m.voice_s)} s"),
            ("first audio (TTFA)", f"{_fmt(m.ttfa_s)} s"),
            ("synthesis", f"{_fmt(m.synth_s)} s (+ {_fmt(m.post_s)} s loudness/watermark)"),
            ("audio", f"{_fmt(m.audio_s)} s"),
            ("RTF", _fmt(m.rtf, 3)),
        ):
            totals.add_row(key, value)
        self.console.print(totals)
        if any(not g.stopped for g in m.groups):
            self.console.print("[dim]* group ended at the token cap, not at the model's stop[/]")

    def convert_report(self, r: dict) -> None:
        """One converted recording: what, where, how fast (`--json`: the dict)."""
        if self.json:
            self.data(r)
        if self.quiet:
            return
        totals = Table.grid(padding=(0, 2))
        totals.add_column(style="bold")
        totals.add_column()
        for key, value in (
            ("source", r["source"]),
            ("output", r.get("output") or "-"),
            ("device", r["device"]),
            ("model", f"{r['model']} S3Gen"),
            ("voice", r["voice"]),
            ("model load", f"{_fmt(r.get('load_s'))} s"),
            ("voice prep", f"{_fmt(r.get('voice_s'))} s"),
            ("first audio (TTFA)", f"{_fmt(r.get('ttfa_s'))} s"),
            ("conversion", f"{_fmt(r.get('synth_s'))} s (+ {_fmt(r.get('post_s'))} s post)"),
            ("audio", f"{_fmt(r.get('audio_s'))} s"),
            ("RTF", _fmt(r.get("rtf"), 3)),
        ):
            totals.add_row(key, escape(str(value)))
        if r.get("heard"):
            h = r["heard"]
            totals.add_row("source says", escape(h["source_transcript"]))
            totals.add_row("heard", escape(f"{h['transcript']} ({h['wer']:.0%} off)"))
        self.console.print(totals)

    def verify_table(self, reports: list) -> None:
        if self.quiet:
            return
        table = Table(title="verify", title_justify="left")
        for col in ("file", "watermark", "sr", "s", "LUFS", "peak dBFS", "ours", "result"):
            table.add_column(col, justify="left" if col in ("file", "result") else "right")
        for r in reports:
            made = r.provenance or {}
            table.add_row(
                escape(r.path),
                _fmt(r.watermark),
                str(r.sample_rate or "-"),
                _fmt(r.duration_s),
                _fmt(r.lufs, 1),
                _fmt(r.peak_dbfs, 1),
                escape(made.get("model", "-")),
                "[green]ok[/]" if r.ok else f"[red]{escape(r.error or '; '.join(r.problems))}[/]",
            )
        self.console.print(table)

    def bench_header(self, env: dict) -> None:
        if self.quiet:
            return
        weights = "[bold yellow]RANDOM weights (fixed tokens)[/]" if env["random_weights"] else ""
        self.console.print(
            f"chatterbox-tts {env['chatterbox_tts']} · torch {env['torch']} · {env['device']} "
            f"({env['device_name']}) · {env['dtype']} · {env['threads']} threads\n"
            f"model {env['model']} {weights} · voice {env['voice']} · seed {env['seed']} · "
            f"tokens {env['tokens'] or 'natural stop'} · load {env['load_s']:.1f} s"
        )

    def bench_tables(self, summary: dict, modes: list[str]) -> None:
        if self.quiet:
            return
        main = Table(title="Benchmark (median, min–max)", title_justify="left", show_edge=False)
        for col in (
            "Mode",
            "Text",
            "TTFA s",
            "Total s (min–max)",
            "Audio s",
            "RTF",
            "tok/s",
            "×up",
            "TTFA÷up",
        ):
            main.add_column(col, justify="left" if col in ("Mode", "Text") else "right")
        stages = Table(title="Stages (median s)", title_justify="left", show_edge=False)
        from chatterbox_cli.bench.harness import STAGES

        short = {"t3_prefill": "prefill", "t3_decode": "decode", "loudness": "loud"}
        for col in ("Mode", "Text", *(short.get(k, k) for k in STAGES), "RSS MB"):
            stages.add_column(col, justify="left" if col in ("Mode", "Text") else "right")
        for mode, item, e in _rows(summary, modes):
            main.add_row(
                mode,
                item,
                _fmt(_med(e["ttfa_s"])),
                _range(e["total_s"]),
                _fmt(_med(e["audio_s"])),
                _fmt(_med(e["rtf"]), 3),
                _fmt(_med(e["t3_tok_s"]), 1),
                _fmt(e["vs_upstream"], 2),
                _fmt(e.get("ttfa_vs_upstream"), 3),
            )
            stages.add_row(
                mode,
                item,
                *[_fmt(_med(e["stages"][k]), 3) if e["stages"][k] else "n/m" for k in STAGES],
                _fmt(_med(e["peak_rss_mb"]), 0),
            )
        self.console.print(main)
        self.console.print(stages)
        self.console.print("[dim]n/m: not measured in that mode[/]")

    def bench_markdown(self, summary: dict, modes: list[str]) -> str:
        lines = [
            "| Mode | Text | TTFA s | Total s | Audio s | RTF | tok/s | speed-up vs upstream "
            "| TTFA ÷ upstream total | total ÷ simple |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for mode, item, e in _rows(summary, modes):
            lines.append(
                f"| {mode} | {item} | {_fmt(_med(e['ttfa_s']))} | {_fmt(_med(e['total_s']))} | "
                f"{_fmt(_med(e['audio_s']))} | {_fmt(_med(e['rtf']), 3)} | "
                f"{_fmt(_med(e['t3_tok_s']), 1)} | {_fmt(e['vs_upstream'], 2)} | "
                f"{_fmt(e.get('ttfa_vs_upstream'), 3)} | {_fmt(e.get('total_vs_simple'), 2)} |"
            )
        return "\n".join(lines) + "\n"

    def bench_comparison(self, rows: list, tolerance: float) -> None:
        if self.quiet:
            return
        table = Table(title=f"vs baseline (tolerance {tolerance:.0%})", title_justify="left")
        for col in ("Mode", "Text", "Figure", "old", "new", "new/old", ""):
            table.add_column(col)
        for r in rows:
            flag = "[red]REGRESSED[/]" if r.regressed else "ok"
            table.add_row(
                r.mode, r.item, r.figure, _fmt(r.old, 3), _fmt(r.new, 3), _fmt(r.ratio, 3), flag
            )
        self.console.print(table)


def _med(stat: dict | None) -> float | None:
    return None if stat is None else stat["median"]


def _range(stat: dict | None) -> str:
    if stat is None:
        return "-"
    return f"{stat['median']:.2f} ({stat['min']:.1f}–{stat['max']:.1f})"


def _rows(summary: dict, modes: list[str]):
    for mode in modes:
        for item, entry in summary.get(mode, {}).items():
            yield mode, item, entry


def _duration(seconds: float) -> str:
    """12.3 s under a minute, else h:mm:ss (a book's hours of audio)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
