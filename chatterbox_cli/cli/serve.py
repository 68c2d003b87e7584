"""`chatterbox serve`: the engine behind HTTP (`server/app.py`), on loopback unless told so."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.loading import load
from chatterbox_cli.cli.options import (
    BatchS3GenOpt,
    DeviceOpt,
    DtypeOpt,
    LexiconOpt,
    PackOpt,
    QuantizeOpt,
    ThreadsOpt,
    VoiceOpt,
    flag,
)
from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime.errors import BadInput


@mapped_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8080,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            envvar="CHATTERBOX_MODEL",
            help="A model to serve (default turbo); repeat it, or list several in "
            "$CHATTERBOX_MODEL, to serve several: the first answers requests that name none.",
        ),
    ] = None,
    pack: PackOpt = None,
    model_dir: Annotated[
        list[str] | None,
        typer.Option(
            "--model-dir",
            envvar="CHATTERBOX_MODEL_DIR",
            help="Local checkpoint: DIR (the first model's) or MODEL=DIR; repeatable.",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    voice: VoiceOpt = None,
    quantize: QuantizeOpt = "none",
    dtype: DtypeOpt = "auto",
    batch_s3gen: BatchS3GenOpt = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Sentence groups per shared T3 batch (default 16)."),
    ] = None,
    max_queue: Annotated[
        int, typer.Option("--max-queue", help="Requests admitted at once (429 beyond).")
    ] = 64,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", help="Seconds a request may take (504 beyond).")
    ] = 600.0,
    grace: Annotated[
        float,
        typer.Option("--grace", help="On SIGTERM/Ctrl-C, seconds to let requests finish."),
    ] = 10.0,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest voice clip POST /v1/voices takes.")
    ] = 10.0,
    max_convert_s: Annotated[
        float,
        typer.Option("--max-convert-s", help="Longest recording a conversion takes (413 beyond)."),
    ] = 600.0,
    max_text_chars: Annotated[
        int, typer.Option("--max-text-chars", help="Longest input accepted (413 beyond).")
    ] = 4096,
    lexicon: LexiconOpt = None,
    asr: Annotated[
        list[str] | None,
        typer.Option(
            "--asr",
            envvar="CHATTERBOX_ASR",
            help="Listen back to replies with this faster-whisper model: NAME (every model) or "
            "MODEL=NAME; repeatable (needs chatterbox-cli[asr]).",
            show_default=False,
        ),
    ] = None,
    api_token_file: Annotated[
        Path | None,
        typer.Option(
            "--api-token-file",
            help="Require this bearer token (default: $CHATTERBOX_API_TOKEN; none: open).",
        ),
    ] = None,
) -> None:
    """Serve OpenAI-style speech over HTTP and WebSocket; requests share batched decoding."""
    from chatterbox_cli.server import transport
    from chatterbox_cli.server.app import ServeOptions, create_app

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
    checks = (
        (batch_size is None or 1 <= batch_size <= 256, "--batch-size must be between 1 and 256"),
        (1 <= max_queue <= 10_000, "--max-queue must be between 1 and 10000"),
        (0 < request_timeout <= 86_400, "--request-timeout must be between 0 and 86400 s"),
        (0 <= grace <= 3600, "--grace must be between 0 and 3600 s"),
        (0 < max_upload_mb <= 1024, "--max-upload-mb must be between 0 and 1024"),
        (0 < max_convert_s <= 86_400, "--max-convert-s must be between 0 and 86400"),
    )
    for ok, message in checks:
        if not ok:
            raise BadInput(message)
    from chatterbox_cli.models import voices
    from chatterbox_cli.runtime.device import Runtime
    from chatterbox_cli.synth.loader import check_source
    from chatterbox_cli.text.markup import Lexicon

    words = Lexicon.load(lexicon) if lexicon else None
    runtime = Runtime(threads, quantize, dtype, batch_s3gen=batch_s3gen)
    served = served_models(model, pack, model_dir)
    heard_by = recognizers(asr, [name for name, _ in served])
    checked = [check_source(name, folder, device, runtime, flag) for name, folder in served]
    default_voice = {source.kind: voices.resolve(voice, source.kind) for source, _, _ in checked}
    engines = [load(out, source, dev, runtime, share=True) for source, dev, runtime in checked]
    options = ServeOptions(
        max_text_chars=max_text_chars,
        api_token=token,
        max_queue=max_queue,
        request_timeout_s=request_timeout,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        max_convert_s=max_convert_s,
        batch_size=batch_size,
        lexicon=words,
        asr=heard_by,
    )
    app = create_app(engines, options, default_voice)
    kinds = ", ".join(e.source.kind for e in engines)
    out.info(f"serving {kinds} on http://{host}:{port} (auth: {'on' if token else 'off'})")
    config = transport.config(
        app, host, port, log_level="warning", timeout_graceful_shutdown=int(grace)
    )
    server = GracefulServer(config)
    server.run()
    out.info("stopped")


def served_models(
    models: list[str] | None, pack: str | None, dirs: list[str] | None
) -> list[tuple[str, Path | None]]:
    """(model, checkpoint dir) for each `--model` (commas and spaces also separate them);
    `--model-dir DIR` is the first model's, `--model-dir MODEL=DIR` that model's."""
    from chatterbox_cli.models.packs import pack_model

    def canon(name: str) -> str:
        name = name.strip().lower()
        return pack_model(name, pack) if pack and name == "multilingual" else name

    names = [canon(n) for given in (models or ["turbo"]) for n in given.replace(",", " ").split()]
    names = names or ["turbo"]
    if pack and not any(n.startswith("multilingual-") for n in names):
        pack_model(names[0], pack)  # refuses: --pack fits only the multilingual model
    if len(set(names)) < len(names):
        raise BadInput("--model: each model once (the first is the default)")
    folders: dict[str, Path] = {}
    for entry in dirs or []:
        name, eq, folder = entry.partition("=")
        if not eq:
            name, folder = names[0], entry
            if name in folders:
                raise BadInput("--model-dir: with several models write MODEL=DIR for each")
        name = canon(name)
        if name not in names:
            raise BadInput(f"--model-dir {entry}: {name!r} is not a --model of this server")
        folders[name] = Path(folder)
    return [(n, folders.get(n)) for n in names]


def recognizers(entries: list[str] | None, ids: list[str]) -> dict[str, Path]:
    """`--asr NAME` (every model) or `--asr MODEL=NAME` (that one), each resolved now: model
    id -> recognizer folder."""
    from chatterbox_cli.post.asr import resolve

    chosen: dict[str, str] = {}
    for entry in entries or []:
        name, eq, recognizer = entry.partition("=")
        if not eq:
            chosen |= dict.fromkeys(ids, entry)
            continue
        name = name.strip().lower()
        if name not in ids:
            raise BadInput(f"--asr {entry}: {name!r} is not a --model of this server")
        chosen[name] = recognizer
    return {name: resolve(recognizer, flag) for name, recognizer in chosen.items()}


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
