"""The `chatterbox` command: a thin Typer layer over the engine, one module per command."""

from __future__ import annotations

import typer

from chatterbox_cli import __version__
from chatterbox_cli.cli import batch as batch_cmd
from chatterbox_cli.cli import bench as bench_cmd
from chatterbox_cli.cli import book as book_cmd
from chatterbox_cli.cli import convert as convert_cmd
from chatterbox_cli.cli import models as models_cmd
from chatterbox_cli.cli import say as say_cmd
from chatterbox_cli.cli import serve as serve_cmd
from chatterbox_cli.cli import verify as verify_cmd
from chatterbox_cli.cli import voice as voice_cmd

app = typer.Typer(
    name="chatterbox",
    help="Batch and streaming speech synthesis with Resemble AI's Chatterbox models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("say")(say_cmd.say)
app.add_typer(voice_cmd.app, name="voice")
app.command("batch")(batch_cmd.batch)
app.command("convert")(convert_cmd.convert)
app.command("book")(book_cmd.book)
app.command("bench")(bench_cmd.bench)
app.command("verify")(verify_cmd.verify)
app.command("serve")(serve_cmd.serve)
app.command("models")(models_cmd.models)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chatterbox-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Batch and streaming speech synthesis with Resemble AI's Chatterbox models."""


def main() -> None:
    import logging

    from chatterbox_cli.runtime.device import debug_enabled

    logging.basicConfig(level=logging.DEBUG if debug_enabled() else logging.ERROR)
    app()
