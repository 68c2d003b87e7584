"""`chatterbox say`: one text to one audio file."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.groups import grouped
from chatterbox_cli.cli.loading import check_voices, note_language, synthesizer
from chatterbox_cli.cli.options import (
    FailOnFlagOpt,
    FastDecodeOpt,
    JsonOpt,
    ModelFlags,
    OverwriteOpt,
    QuietOpt,
    ShowTextOpt,
    SpeechFlags,
    StreamTokensOpt,
    SubtitlesFileOpt,
    SubtitleWordsOpt,
    SubtypeOpt,
    flag,
)
from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime import limits
from chatterbox_cli.runtime.errors import EXIT_FAILURE, BadInput, VoiceError
from chatterbox_cli.sinks.files import FORMATS, AudioFormat, check_writable, sounddevice
from chatterbox_cli.sinks.subtitles import check_subtitles, save_subtitles
from chatterbox_cli.text.segment import decode_bytes, slug


def read_text(text: str | None, file: Path | None) -> str:
    """TEXT argument, -f FILE, or stdin (`-`, or whenever stdin is not a terminal)."""
    if text is not None and file is not None:
        raise BadInput("give the text either as an argument or with -f FILE, not both")
    if file is not None and str(file) != "-":
        if not file.is_file():
            raise BadInput(f"text file {file} does not exist")
        return decode_bytes(limits.read_file(file), str(file))
    if text == "-" or str(file) == "-" or (text is None and not sys.stdin.isatty()):
        stream = getattr(sys.stdin, "buffer", None)
        data = (
            limits.read_stream(stream, "standard input")
            if stream is not None
            else sys.stdin.read().encode()
        )
        return decode_bytes(data, "standard input")
    if text is None:
        raise BadInput('no text given; run `chatterbox say "Hello."`, use -f FILE, or pipe text in')
    return text


def output_target(output: str | None, text: str, fmt: AudioFormat) -> Path:
    """`-o FILE`, `-o DIR/`, or a slug of the text in the current directory."""
    name = slug(text) + fmt.suffix
    if output is None:
        return Path(name)
    if output.endswith(("/", os.sep)) or Path(output).is_dir():
        return Path(output) / name
    path = Path(output)
    return path if path.suffix else path.with_suffix(fmt.suffix)


def audio_format(output: str | None, fmt: str | None, subtype: str) -> AudioFormat:
    """--format wins; else the -o suffix (.wav/.flac/.mp3/.opus/.ogg); else WAV."""
    if fmt is None and output and Path(output).suffix and not output.endswith(("/", os.sep)):
        suffix = Path(output).suffix.lower().lstrip(".")
        if suffix not in FORMATS:
            raise BadInput(
                f"cannot write .{suffix} files; name the output .wav, .flac, .mp3, .opus or .ogg"
            )
        fmt = suffix
    return AudioFormat(fmt or "wav", subtype).check(flag)


def check_stream_args(
    streaming: bool,
    fmt: str | None,
    subtype: str,
    json_out: bool,
    play: bool = False,
    output: str | None = None,
) -> str:
    """`-o -` streams WAV or raw PCM16 to stdout, `--play` to the speaker; refuse what can't
    work before loading."""
    if play:
        if output is not None:
            raise BadInput("--play speaks instead of writing; drop -o, or drop --play")
        if fmt is not None:
            raise BadInput("--format is for files and -o -; drop it with --play")
        sounddevice()
        return "play"
    if not streaming:
        if fmt == "raw":
            raise BadInput("--format raw is for streaming; use it with -o -")
        return ""
    fmt = (fmt or "wav").lower()
    if fmt not in ("wav", "raw"):
        raise BadInput(
            f"-o - streams wav or raw only; use --format wav|raw, or -o FILE.{fmt} for {fmt}"
        )
    if subtype.upper() != "PCM_16":
        raise BadInput("-o - streams 16-bit PCM; drop --subtype or write to a file")
    if json_out:
        raise BadInput("--json prints on stdout, which carries the audio with -o -; drop one")
    if sys.stdout.isatty():
        raise BadInput(
            "refusing to write binary audio to a terminal; pipe it (| aplay) or use -o FILE"
        )
    return fmt


def stream_out(tts, plan, fmt: str, out: Output, metrics) -> list:
    """Audio goes out piece by piece as it exists; TTFA is the first samples handed over.
    Where each group is said in the stream (`Segment`s)."""
    from chatterbox_cli.runtime.metrics import rtf
    from chatterbox_cli.sinks.files import Playback
    from chatterbox_cli.sinks.stream import PcmStream
    from chatterbox_cli.synth.pipeline import group_metrics

    engine = tts.engine
    if fmt == "play":
        sink = Playback(engine.sample_rate)
    else:
        if fmt == "raw":
            out.info(f"raw audio on stdout: s16le, mono, {engine.sample_rate} Hz")
        sink = PcmStream(sys.stdout.buffer, engine.sample_rate, raw=fmt == "raw")
    t0 = time.perf_counter()
    finished, said = False, []
    n_groups = len(plan.groups)
    try:
        with out.progress(n_groups, f"Streaming {n_groups} group(s)") as advance:

            def on_chunk(chunk) -> None:
                metrics.groups.append(group_metrics(chunk, plan.options.speed))
                advance()

            for chunk in tts.stream(plan, on_chunk=on_chunk):
                sink.write(chunk.samples)
                if chunk.segment is not None:
                    said.append(chunk.segment)
                if metrics.ttfa_s is None:
                    metrics.ttfa_s = time.perf_counter() - t0
        metrics.synth_s = time.perf_counter() - t0
        finished = True
    finally:
        if fmt == "play":
            sink.close(abort=not finished)
    metrics.audio_s = sink.frames / engine.sample_rate
    metrics.rtf = rtf(metrics.synth_s, metrics.audio_s)
    return said


@mapped_errors
@grouped
def say(
    text: Annotated[
        str | None, typer.Argument(help="Text to speak; '-' reads stdin.", show_default=False)
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the text from a UTF-8 file ('-': stdin)."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="Output file, DIR/, or - (stream to stdout); default: a slug."
        ),
    ] = None,
    speech: SpeechFlags = SpeechFlags(),
    model: ModelFlags = ModelFlags(),
    fast_decode: FastDecodeOpt = False,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="wav|flac|mp3|opus|ogg (wav|raw with -o -); default: the -o suffix."
        ),
    ] = None,
    play: Annotated[
        bool,
        typer.Option("--play", help="Speak through the default output device as audio arrives."),
    ] = False,
    stream_tokens: StreamTokensOpt = None,
    subtype: SubtypeOpt = "PCM_16",
    subtitles: SubtitlesFileOpt = None,
    subtitle_words: SubtitleWordsOpt = False,
    overwrite: OverwriteOpt = False,
    show_text: ShowTextOpt = False,
    fail_on_flag: FailOnFlagOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Speak TEXT into a loudness-normalized, watermarked audio file.

    TEXT may hold \\[pause:1.5s] and \\[voice:NAME]...\\[/voice] markup (\\\\[ is a bracket).
    """
    from chatterbox_cli.models import get, voices
    from chatterbox_cli.runtime.metrics import RunMetrics, rtf

    out = Output(quiet=quiet, json=json_out)
    streaming = output == "-" or play
    stream_fmt = check_stream_args(output == "-", fmt, subtype, json_out, play, output)
    if stream_tokens is not None and not streaming:
        raise BadInput("--stream-tokens is for streaming; use it with -o - or --play")
    name = model.name
    family = get(name)
    raw = read_text(text, file)
    request = speech.request(raw, streaming, stream_tokens=stream_tokens)
    plan = request.plan(family, flag)
    if show_text:
        out.spoken([("", plan.language.code, raw, plan.groups)])
        return
    note_language(plan.language, out)
    check_voices(plan.voices, name)
    audio_fmt = target = None
    if not streaming:
        audio_fmt = audio_format(output, fmt, subtype)
        target = output_target(output, raw, audio_fmt)
        check_writable(target, overwrite, flag)
    spec = voices.resolve(speech.voice, name)
    source, device, runtime = model.checked(fast_decode)
    asr = model.recognizer()
    if asr is not None and streaming:
        raise BadInput("--asr checks files (it may retry a group); drop -o -/--play, or --asr")
    if check_subtitles(subtitles, subtitle_words, asr is not None, flag):
        check_writable(subtitles, overwrite, flag)
    if spec.kind == "builtin" and source.has_builtin_voice is False:
        raise VoiceError(
            f"{model.model_dir} has no built-in voice (conds.pt); pass --voice REF.wav or a "
            "cached voice"
        )

    tts = synthesizer(out, source, device, runtime, asr)
    engine = tts.engine
    t0 = time.perf_counter()
    with out.status(f"Preparing voice {spec.label}…"):
        tts.voices.get(speech.voice, spec)
    voice_s = time.perf_counter() - t0

    metrics = RunMetrics(
        model=name,
        model_source=source.describe(),
        device=engine.device,
        voice=spec.label,
        t3_file=source.family.t3_file,
        output=str(target) if target else "speaker" if play else "-",
        language=plan.language.code,
        load_s=engine.load_s,
        voice_s=voice_s,
        lufs_target=plan.options.lufs,
        seed=plan.options.seed,
    )
    if target is None:
        said = stream_out(tts, plan, stream_fmt, out, metrics)
        if subtitles is not None:
            save_subtitles(subtitles, said, plan.language, overwrite=overwrite)
        out.say_report(metrics)
        return
    n_groups = len(plan.groups)
    with out.progress(n_groups, f"Synthesizing {n_groups} group(s)") as advance:
        audio = tts.say(plan, on_chunk=advance)
    audio.save(target, audio_fmt.format, overwrite, audio_fmt.subtype)
    if subtitles is not None:
        save_subtitles(subtitles, audio.segments, plan.language, subtitle_words, overwrite)
    metrics.provenance = audio.provenance
    metrics.ttfa_s, metrics.synth_s, metrics.post_s = audio.ttfa_s, audio.synth_s, audio.post_s
    metrics.audio_s, metrics.rtf = audio.duration_s, rtf(audio.synth_s, audio.duration_s)
    metrics.lufs_measured, metrics.peak_limited = audio.lufs, audio.peak_limited
    metrics.groups = audio.groups
    metrics.retries = sum(g.retries for g in audio.groups)
    metrics.flags = audio.flags
    out.say_report(metrics)
    if metrics.flags:
        out.warn(f"still flagged after {metrics.retries} retries: {'; '.join(metrics.flags)}")
        if fail_on_flag:
            raise typer.Exit(EXIT_FAILURE)
