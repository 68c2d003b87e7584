"""Model selection shared by every command: check flags first, load (with a status) later."""

from __future__ import annotations

from pathlib import Path

from chatterbox_cli.cli.output import Output


def checked_source(
    model: str,
    model_dir: Path | None,
    device: str,
    threads: int | None = None,
    quantize: str = "none",
    dtype: str = "auto",
    fast_decode: bool = False,
    overlap: bool = False,
    batch_s3gen: bool | None = None,
):
    """Validate --model/--model-dir/--device and the runtime flags before anything heavy."""
    from chatterbox_cli.runtime.device import Runtime
    from chatterbox_cli.synth.loader import check_source

    runtime = Runtime(threads, quantize, dtype, fast_decode, overlap, batch_s3gen)
    return check_source(model, model_dir, device, runtime)


def load(out: Output, source, device: str, runtime=None, share: bool = False):
    from chatterbox_cli.synth.loader import load_engine

    if runtime is not None and runtime.quantize == "int8":
        out.warn("--quantize int8 trades fidelity for speed (see README: measured deviation)")
    with out.status(f"Loading {source.kind} from {source.describe()}…"):
        return load_engine(source, device, runtime, share=share)


def synthesizer(out: Output, source, device: str, runtime):
    """The Python API's `Synthesizer` for checked flags, loaded under a status line."""
    from chatterbox_cli.api import Synthesizer

    if runtime.quantize == "int8":
        out.warn("--quantize int8 trades fidelity for speed (see README: measured deviation)")
    with out.status(f"Loading {source.kind} from {source.describe()}…"):
        return Synthesizer(source.kind, source.model_dir, device, runtime=runtime)


def checked_language(family, code: str | None, out: Output):
    """--language (or a batch row's) checked against the family before anything loads; an
    optional text package the language misses is reported, once per run."""
    from chatterbox_cli.text.languages import missing_package

    lang = family.language(code)
    note = missing_package(lang)
    if note and note not in out.noted:
        out.noted.add(note)
        out.warn(note)
    return lang


def family_options(model: str, cfm_steps: int | None, **given):
    """The family's sampling (defaults + the flags given) and flow steps: a flag the model does
    not use fails here, before anything loads."""
    from chatterbox_cli.models import get

    family = get(model)
    params = family.sampling(**given)
    return family, params, family.check_cfm_steps(cfm_steps)


def marked_text(raw: str, lexicon: Path | None, model: str, lang, short_first: bool = False):
    """The text's groups with its markup and `--lexicon` applied, every `[voice:NAME]` checked
    before a model loads; and the lexicon, loaded once."""
    from chatterbox_cli.text.markup import Lexicon, split_marked

    words = Lexicon.load(lexicon) if lexicon else None
    groups = split_marked(raw, words, short_first=short_first, lang=lang)
    check_voices({g.voice for g in groups}, model)
    return groups, words


def check_voices(names, model: str) -> None:
    """Every `[voice:NAME]` resolves before the work starts."""
    from chatterbox_cli.models import voices

    for name in sorted(n for n in names if n):
        voices.resolve(name, model)
