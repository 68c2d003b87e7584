"""`chatterbox convert`: recordings spoken again in another voice (S3Gen voice conversion)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.jobrun import recording
from chatterbox_cli.cli.options import (
    AsrMaxWerOpt,
    AsrOpt,
    CfmStepsOpt,
    DeviceOpt,
    DtypeOpt,
    FailOnFlagOpt,
    JsonOpt,
    LufsOpt,
    ModelDirOpt,
    OverwriteOpt,
    QuietOpt,
    SeedOpt,
    SpeedOpt,
    SubtitlesFormatOpt,
    SubtypeOpt,
    ThreadsOpt,
    VoiceOpt,
    flag,
)
from chatterbox_cli.cli.output import Output
from chatterbox_cli.post import DEFAULT_LUFS
from chatterbox_cli.post.asr import DEFAULT_MAX_WER
from chatterbox_cli.runtime.errors import EXIT_FAILURE, BadInput
from chatterbox_cli.sinks.subtitles import subtitle_format

HELP_MODEL = (
    "Whose S3Gen renders: standard (default: upstream's voice-conversion weights, "
    "ResembleAI/chatterbox, 10 flow steps, exactly ChatterboxVC), turbo or nano (their 2-step "
    "meanflow S3Gen: several times faster; its conversion quality is unverified)."
)


def _one_target(output: str | None, source: str, fmt) -> Path:
    """-o FILE or DIR/, else `<source stem>-converted.<fmt>` here."""
    if output is None:
        if source == "-":
            raise BadInput("a source on stdin needs -o FILE, or -o - to stream to stdout")
        return Path(f"{Path(source).stem}-converted{fmt.suffix}")
    path = Path(output)
    if output.endswith("/") or path.is_dir():
        stem = "stdin" if source == "-" else Path(source).stem
        return path / f"{stem}-converted{fmt.suffix}"
    return path if path.suffix else path.with_suffix(fmt.suffix)


@mapped_errors
def convert(
    sources: Annotated[
        list[str],
        typer.Argument(help="Recordings or folders of them; '-' reads a WAV from stdin."),
    ],
    voice: VoiceOpt = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Output file (one source), DIR/, or - (stdout)."),
    ] = None,
    outdir: Annotated[
        Path | None,
        typer.Option(
            "--outdir", "-d", help="Output folder for several sources (manifest, resume)."
        ),
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help=HELP_MODEL)] = "standard",
    model_dir: ModelDirOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    dtype: DtypeOpt = "auto",
    seed: SeedOpt = None,
    cfm_steps: CfmStepsOpt = None,
    max_piece: Annotated[
        float,
        typer.Option("--max-piece", help="Longest stretch rendered in one pass, seconds (5-60)."),
    ] = 20.0,
    lufs: LufsOpt = DEFAULT_LUFS,
    speed: SpeedOpt = 1.0,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="wav|flac|mp3|opus|ogg (wav|raw with -o -)."),
    ] = None,
    subtype: SubtypeOpt = "PCM_16",
    overwrite: OverwriteOpt = False,
    asr: AsrOpt = None,
    asr_max_wer: AsrMaxWerOpt = DEFAULT_MAX_WER,
    subtitles: SubtitlesFormatOpt = None,
    fail_on_flag: FailOnFlagOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Speak recordings again in another voice (cached voice or a 5-10 s clip); with --asr,
    each output is heard back against what its source is heard saying."""
    from chatterbox_cli.cli.say import audio_format, check_stream_args
    from chatterbox_cli.jobs import convert as job
    from chatterbox_cli.models import voices
    from chatterbox_cli.post.asr import check_max_wer, resolve
    from chatterbox_cli.runtime.device import Runtime, check_device_name
    from chatterbox_cli.sinks.files import check_writable
    from chatterbox_cli.synth.convert import check_model
    from chatterbox_cli.synth.request import check_lufs, check_max_piece, check_speed

    out = Output(quiet=quiet, json=json_out)
    family = check_model(model)
    steps = family.check_cfm_steps(cfm_steps, flag)
    check_lufs(lufs, flag)
    check_max_piece(max_piece, flag)
    check_speed(speed, flag)
    Runtime(threads=threads, dtype=dtype).check_flags(flag)
    check_device_name(device)
    several = outdir is not None or len(sources) > 1 or any(Path(s).is_dir() for s in sources)
    if several and output is not None:
        raise BadInput("-o names one output; with several sources or a folder use -d OUTDIR")
    if several and "-" in sources:
        raise BadInput("stdin ('-') is one source; convert it alone, with -o")
    streaming = output == "-"
    stream_fmt = check_stream_args(streaming, fmt, subtype, json_out)
    check_max_wer(asr_max_wer, flag)
    heard_by = resolve(asr, flag) if asr else None
    if heard_by is not None and streaming:
        raise BadInput("--asr checks files; drop -o -, or --asr")
    if subtitles is not None and heard_by is None:
        raise BadInput("--subtitles for a conversion come from the words heard in it: add --asr")
    sub_fmt = subtitle_format(subtitles, "--subtitles") if subtitles else None
    items = job.collect_sources(sources) if several else None
    if not several and sources[0] != "-" and not Path(sources[0]).is_file():
        raise BadInput(f"source file {sources[0]} does not exist")
    audio_fmt = target = None
    if not streaming:
        audio_fmt = audio_format(None if several else output, fmt, subtype)
        if not several:
            target = _one_target(output, sources[0], audio_fmt)
            check_writable(target, overwrite, flag)
    voices.resolve(voice, model)
    todo = cfg = None
    if several:
        if outdir is None:
            raise BadInput("several sources need -d OUTDIR")
        if outdir.exists() and not outdir.is_dir():
            raise BadInput(f"--outdir {outdir} is not a directory")
        cfg = job.ConvertConfig(
            outdir, audio_fmt, voice, seed, lufs, steps, max_piece, overwrite, speed, asr_max_wer,
            sub_fmt,
        )  # fmt: skip
        outdir.mkdir(parents=True, exist_ok=True)
        todo = job.pending(items, cfg)
        if len(todo) < len(items):
            out.info(f"resuming: {len(items) - len(todo)} of {len(items)} already done in {outdir}")
        if not todo:
            out.info("nothing to do")
            return
    pieces = 0
    if not several:
        from chatterbox_cli.runtime import limits
        from chatterbox_cli.synth.convert import scan_source

        stdin = None
        if sources[0] == "-":
            stream = getattr(sys.stdin, "buffer", None)
            stdin = limits.read_stream(stream, "standard input", limits.AUDIO_STDIN_MB)
        source = scan_source(
            stdin if stdin is not None else Path(sources[0]),
            "standard input" if stdin is not None else None,
            max_piece,
        )
        pieces = len(source.cuts) - 1

    vc = _load(out, model, model_dir, device, threads, dtype)
    listener = _listener(out, heard_by, vc.converter.device)
    t0 = time.perf_counter()
    with out.status(f"Preparing voice {voice or 'built-in'}…"):
        vc.voice(voice)
    voice_s = time.perf_counter() - t0
    if several:
        _run_many(out, vc, todo, cfg, json_out, listener, fail_on_flag)
        return
    opts = dict(seed=seed, lufs=lufs, cfm_steps=steps, max_piece_s=max_piece, speed=speed)
    report = {
        "source": sources[0],
        "model": model,
        "device": vc.converter.device,
        "voice": voice or "built-in",
        "load_s": vc.converter.load_s,
        "voice_s": voice_s,
    }
    if streaming:
        _stream(out, vc, source, voice, opts, stream_fmt, report)
    else:
        from chatterbox_cli.jobs.convert import save_converted

        with out.progress(pieces, f"Converting {pieces} piece(s)") as advance:
            done = save_converted(
                vc, source, target, audio_fmt, voice, overwrite=overwrite, on_piece=advance,
                **opts,
            )  # fmt: skip
        report.update(
            output=str(target),
            ttfa_s=done.ttfa_s,
            synth_s=done.synth_s,
            post_s=done.post_s,
            audio_s=done.audio_s,
            rtf=done.synth_s / done.audio_s,
            provenance=done.provenance,
        )
        if listener is not None:
            with out.status("Listening back…"):
                report |= job.listened(listener, source.source, target, asr_max_wer)
            if sub_fmt:
                report["subtitles"] = str(job.heard_subtitles(report["heard"], target, sub_fmt))
    out.convert_report(report)
    if report.get("flags"):
        out.warn(f"{target}: {_heard(report['heard'])}")
        if fail_on_flag:
            raise typer.Exit(EXIT_FAILURE)


def _listener(out: Output, path, device: str):
    """The recognizer `--asr` named (resolved already), loaded; None without one."""
    if path is None:
        return None
    from chatterbox_cli.post.asr import Listener

    with out.status(f"Loading the recognizer {path.name}…"):
        return Listener(path, device)


def _heard(heard: dict) -> str:
    return (
        f"asr-mismatch: heard {heard['transcript']!r} where the source says "
        f"{heard['source_transcript']!r} ({heard['wer']:.0%} off)"
    )


def _load(out: Output, model, model_dir, device, threads, dtype):
    from chatterbox_cli.api import VoiceConverter

    where = model_dir or f"hf://{_repo(model)}"
    with out.status(f"Loading {model}'s S3Gen from {where}…"):
        return VoiceConverter(model, model_dir, device, dtype=dtype, threads=threads)


def _repo(model: str) -> str:
    from chatterbox_cli.models import get

    return get(model).hub_repo


def _stream(out: Output, vc, source, voice, opts: dict, fmt: str, report: dict) -> None:
    from chatterbox_cli.sinks.stream import PcmStream

    sink = PcmStream(sys.stdout.buffer, vc.sample_rate, raw=fmt == "raw")
    t0 = time.perf_counter()
    ttfa = None
    for audio in vc.stream(source, voice, **opts):
        sink.write(audio)
        ttfa = ttfa if ttfa is not None else time.perf_counter() - t0
    synth_s = time.perf_counter() - t0
    audio_s = sink.frames / vc.sample_rate
    rate = synth_s / audio_s if audio_s else None
    report.update(output="-", ttfa_s=ttfa, synth_s=synth_s, audio_s=audio_s, rtf=rate)


def _run_many(out: Output, vc, todo, cfg, json_out: bool, listener, fail_on_flag: bool) -> None:
    from chatterbox_cli.jobs import convert as job
    from chatterbox_cli.sinks import manifest as manifests

    manifests.clean_temp_files(cfg.outdir)
    run = recording(out, cfg.outdir, len(todo), json_out, "{source}", "files", "Converting")

    def noted(rec: dict) -> None:
        if rec.get("flags"):
            out.warn(f"{rec['source']}: {_heard(rec['heard'])}")
        on_record(rec)

    with run as (manifest, on_record, tally):
        job.run_convert(vc, todo, cfg, manifest, noted, listener)
    flagged = f" ({tally.flagged} flagged)" if listener is not None else ""
    out.info(f"{tally.ok} converted{flagged}, {tally.failed} failed -> {cfg.outdir}")
    tally.exit_if_failed(fail_on_flag)
