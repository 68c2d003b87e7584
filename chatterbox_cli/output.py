"""The one output layer: human text, progress and tables on stderr; data (JSON) on stdout."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from chatterbox_cli.metrics import RunMetrics


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass
class Output:
    quiet: bool = False
    json: bool = False
    console: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[yellow]warning:[/] {message}")

    def error(self, message: str) -> None:
        line = " ".join(str(message).split()) or "failed"
        self.console.print(f"[bold red]error:[/] {line}", soft_wrap=True)

    def data(self, obj) -> None:
        """Machine output: one JSON document per line on stdout."""
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
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
        """A progress bar on stderr; yields `advance(description=None)`."""
        if self.quiet:
            yield lambda *a, **k: None
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
                bar.advance(task)

            yield advance

    def say_report(self, m: RunMetrics) -> None:
        if self.json:
            self.data(m.to_dict())
        if self.quiet:
            return
        table = Table(title="Synthesis", title_justify="left", show_edge=False)
        for col in ("#", "chars", "tokens", "audio s", "synth s", "RTF"):
            table.add_column(col, justify="right")
        for g in m.groups:
            tokens = f"{g.speech_tokens}" + ("" if g.stopped else "*")
            table.add_row(
                str(g.index + 1),
                str(g.chars),
                tokens,
                _fmt(g.audio_s),
                _fmt(g.synth_s),
                _fmt(g.rtf),
            )
        self.console.print(table)
        totals = Table.grid(padding=(0, 2))
        totals.add_column(style="bold")
        totals.add_column()
        for key, value in (
            ("output", m.output or "-"),
            ("device", m.device),
            ("model", f"{m.model} ({m.model_source})"),
            ("voice", m.voice),
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
