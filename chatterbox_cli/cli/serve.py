"""`chatterbox serve`: the engine behind HTTP (server.py), on loopback unless told otherwise."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.model import checked_source, load
from chatterbox_cli.cli.options import DeviceOpt, ModelDirOpt, ModelOpt, ThreadsOpt
from chatterbox_cli.errors import BadInput
from chatterbox_cli.output import Output


@mapped_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8080,
    model: ModelOpt = "turbo",
    model_dir: ModelDirOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    max_text_chars: Annotated[
        int, typer.Option("--max-text-chars", help="Longest input accepted (413 beyond).")
    ] = 4096,
    api_token_file: Annotated[
        Path | None,
        typer.Option(
            "--api-token-file",
            help="Require this bearer token (default: $CHATTERBOX_API_TOKEN; none: open).",
        ),
    ] = None,
) -> None:
    """Serve POST /v1/audio/speech (OpenAI-style) and GET /health."""
    import uvicorn

    from chatterbox_cli.server import ServeOptions, create_app

    GracefulServer = graceful_server_class()  # noqa: N806
    out = Output()
    token = os.environ.get("CHATTERBOX_API_TOKEN") or None
    if api_token_file is not None:
        if not api_token_file.is_file():
            raise BadInput(f"--api-token-file {api_token_file} does not exist")
        token = api_token_file.read_text(encoding="utf-8").strip() or None
    if not 1 <= max_text_chars <= 1_000_000:
        raise BadInput("--max-text-chars must be between 1 and 1000000")
    if not 0 < port < 65536:
        raise BadInput("--port must be between 1 and 65535")
    source, device, runtime = checked_source(model, model_dir, device, threads)
    engine = load(out, source, device, runtime)
    app = create_app(engine, ServeOptions(max_text_chars, token))
    out.info(f"serving {source.kind} on http://{host}:{port} (auth: {'on' if token else 'off'})")
    server = GracefulServer(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    server.run()
    out.info("stopped")


def graceful_server_class():
    """uvicorn's Server, except that SIGTERM/SIGINT end it with exit 0: uvicorn re-raises the
    signal after its graceful shutdown, which makes the process die of it."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def capture_signals(self):
            import contextlib
            import signal

            @contextlib.contextmanager
            def captured():
                def stop(_signum, _frame):
                    self.force_exit = self.should_exit  # a second Ctrl-C: don't wait
                    self.should_exit = True

                old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
                try:
                    yield
                finally:
                    for sig, handler in old.items():
                        signal.signal(sig, handler)

            return captured()

    return GracefulServer
