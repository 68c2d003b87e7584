"""Loading shared by every command: checks that need the model's name but not its weights,
then the load itself under a status line."""

from __future__ import annotations

from chatterbox_cli.cli.output import Output

INT8_NOTE = "--quantize int8 trades fidelity for speed (see README: measured deviation)"


def load(out: Output, source, device: str, runtime=None, share: bool = False):
    from chatterbox_cli.synth.loader import load_engine

    if runtime is not None and runtime.quantize == "int8":
        out.warn(INT8_NOTE)
    with out.status(f"Loading {source.kind} from {source.describe()}…"):
        return load_engine(source, device, runtime, share=share)


def synthesizer(out: Output, source, device: str, runtime, asr=None):
    """The Python API's `Synthesizer` for checked flags, loaded under a status line; with
    `asr` (a resolved recognizer folder) it listens back to every group."""
    from chatterbox_cli.api import Synthesizer

    engine = load(out, source, device, runtime)
    if asr is not None:
        from chatterbox_cli.post.asr import Listener

        with out.status(f"Loading the recognizer {asr.name}…"):
            engine.listener = Listener(asr, engine.device)
    return Synthesizer.of(engine)


def note_language(lang, out: Output) -> None:
    """An optional text package the language misses is reported, once per run."""
    from chatterbox_cli.text.languages import missing_package

    note = missing_package(lang)
    if note and note not in out.noted:
        out.noted.add(note)
        out.warn(note)


def check_voices(names, model: str) -> None:
    """Every `[voice:NAME]` resolves before the work starts."""
    from chatterbox_cli.models import voices

    for name in sorted(n for n in names if n):
        voices.resolve(name, model)
