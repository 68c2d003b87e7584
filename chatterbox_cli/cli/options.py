"""Option aliases shared by every command (one definition, one help text, one env var), the
option groups several commands take whole (`cli/groups.py`), and how the CLI spells a knob in
a message (`flag`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.post.asr import DEFAULT_MAX_WER
from chatterbox_cli.synth.request import DEFAULT_LUFS, DEFAULT_PAUSE_S, RETRIES, SpeechRequest

FLAGS = {"pause_s": "--pause", "max_piece_s": "--max-piece", "subtitle_words": "--subtitles-words"}
"""Request fields whose flag is not the field's name with dashes."""


def flag(name: str) -> str:
    """The flag for a request field or setting (`top_k` -> `--top-k`): the CLI's spelling."""
    return FLAGS.get(name) or "--" + name.replace("_", "-")


ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        envvar="CHATTERBOX_MODEL",
        help="Model family: turbo (fast), nano (fastest, for CPUs), standard (expressive, "
        "--exaggeration), multilingual (V3, 23 languages, --language), multilingual-v2 or "
        "flash (parallel decoding, --steps); `chatterbox models` lists them.",
    ),
]
PackOpt = Annotated[
    str | None,
    typer.Option(
        "--pack",
        envvar="CHATTERBOX_PACK",
        help="A Single Language Pack model (with --model multilingual): zh-cmn, es-mx-latam, "
        "pt-br, es-es, pt-pt or hi; it fixes the language.",
        show_default=False,
    ),
]
LanguageOpt = Annotated[
    str | None,
    typer.Option(
        "--language",
        "-l",
        envvar="CHATTERBOX_LANGUAGE",
        help="Language code of the text (multilingual model: ar da de el en es fi fr he hi it ja "
        "ko ms nl no pl pt ru sv sw tr zh); default en.",
        show_default=False,
    ),
]
ModelDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--model-dir",
        envvar="CHATTERBOX_MODEL_DIR",
        help="Local checkpoint directory (from_local layout); default: Hugging Face Hub/cache.",
        file_okay=False,
    ),
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device", envvar="CHATTERBOX_DEVICE", help="auto|cpu|cuda|mps (auto: cuda > mps > cpu)."
    ),
]
VoiceOpt = Annotated[
    str | None,
    typer.Option(
        "--voice",
        "-v",
        help="Cached voice name, a voice .pt, or a 5-10 s reference clip; default: built-in.",
    ),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Make the run reproducible.")]
TemperatureOpt = Annotated[
    float | None, typer.Option("--temperature", help="Sampling temperature [0.8; flash 0.6].")
]
TopPOpt = Annotated[
    float | None,
    typer.Option("--top-p", help="Nucleus sampling threshold [turbo 0.95, standard 1.0]."),
]
TopKOpt = Annotated[
    int | None, typer.Option("--top-k", help="Top-k sampling, turbo only (0 disables) [1000].")
]
MinPOpt = Annotated[
    float | None,
    typer.Option("--min-p", help="Min-p sampling, standard only (0 disables) [0.05]."),
]
RepetitionPenaltyOpt = Annotated[
    float | None,
    typer.Option("--repetition-penalty", help="Penalty for repeated speech tokens [1.2]."),
]
CfgWeightOpt = Annotated[
    float | None,
    typer.Option("--cfg-weight", help="Guidance, standard and flash (0: off) [0.5; flash 1]."),
]
ExaggerationOpt = Annotated[
    float | None,
    typer.Option("--exaggeration", help="Emotion intensity, standard, flash (0.5 neutral, to 2)."),
]
StepsOpt = Annotated[
    int | None, typer.Option("--steps", help="Denoising steps per block at most, flash only [10].")
]
BlockSizeOpt = Annotated[
    int | None, typer.Option("--block-size", help="Tokens decoded in parallel, flash only [16].")
]
MaxNewTokensOpt = Annotated[
    int | None,
    typer.Option("--max-new-tokens", help="Speech tokens a group may take (25 = 1 s) [auto]."),
]
LexiconOpt = Annotated[
    Path | None,
    typer.Option("--lexicon", help="TSV file: word or phrase, a tab, how to say it (whole words)."),
]
NormalizeOpt = Annotated[
    bool,
    typer.Option(
        "--normalize/--no-normalize",
        help="Say numbers, money, dates, units and symbols in words (see --show-text).",
    ),
]
ShowTextOpt = Annotated[
    bool,
    typer.Option(
        "--show-text", help="Print what will be spoken, group by group, and exit (no model)."
    ),
]
SubtitlesFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--subtitles", help="Also write subtitles: FILE.srt or FILE.vtt.", show_default=False
    ),
]
SubtitlesFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--subtitles",
        help="Also write subtitles beside each output: srt or vtt.",
        show_default=False,
    ),
]
SubtitleWordsOpt = Annotated[
    bool,
    typer.Option("--subtitles-words", help="One subtitle cue per word, as heard (needs --asr)."),
]
AsrOpt = Annotated[
    str | None,
    typer.Option(
        "--asr",
        envvar="CHATTERBOX_ASR",
        help="Listen back with this faster-whisper model (tiny, base.en, small, "
        "large-v3-turbo... or a CTranslate2 folder; needs chatterbox-cli[asr]).",
        show_default=False,
    ),
]
AsrMaxWerOpt = Annotated[
    float,
    typer.Option("--asr-max-wer", help="Word error rate over which the audio is flagged."),
]
FailOnFlagOpt = Annotated[
    bool,
    typer.Option(
        "--fail-on-flag",
        help="Exit 1 when a group is still flagged after its retries (asr-mismatch, runaway...).",
    ),
]
PauseOpt = Annotated[
    float, typer.Option("--pause", help="Silence between sentence groups (s); 0 crossfades.")
]
SpeedOpt = Annotated[
    float,
    typer.Option(
        "--speed", help="Faster or slower at the same pitch, 0.5-2 (a time-stretch of the speech)."
    ),
]
StreamTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--stream-tokens",
        help="With -o - or --play: audio every N speech tokens (25 = 1 s; approximate seams).",
    ),
]
CfmStepsOpt = Annotated[
    int | None,
    typer.Option(
        "--cfm-steps",
        help="Flow steps (fewer: faster, approximate) [turbo 2 of 1-2, standard 10 of 1-10].",
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads", envvar="CHATTERBOX_THREADS", help="CPU threads for torch (default: cores)."
    ),
]
QuantizeOpt = Annotated[
    str,
    typer.Option(
        "--quantize",
        envvar="CHATTERBOX_QUANTIZE",
        help="none|int8: int8 T3 weights on CPU (faster, approximate; cached on disk).",
    ),
]
DtypeOpt = Annotated[
    str,
    typer.Option(
        "--dtype",
        envvar="CHATTERBOX_DTYPE",
        help="auto|float32|bfloat16|float16 for T3 and the flow (auto: bf16 on CUDA).",
    ),
]
FastDecodeOpt = Annotated[
    bool,
    typer.Option(
        "--fast-decode",
        help="Static KV cache (+ CUDA graphs on CUDA) for T3; opt-in, single stream only.",
    ),
]
OverlapOpt = Annotated[
    bool,
    typer.Option(
        "--overlap",
        help="Run T3 ahead in a thread while S3Gen renders (for GPUs; no gain on small CPUs).",
    ),
]
BatchS3GenOpt = Annotated[
    bool | None,
    typer.Option(
        "--batch-s3gen/--no-batch-s3gen",
        help="Run S3Gen over a batch's groups at once (default: on CUDA, off on CPU).",
    ),
]
RetriesOpt = Annotated[
    int,
    typer.Option(
        "--retries",
        help="Synthesize a group again (derived seed) when it runs on past its cap, is cut "
        "short, or goes silent; keep the best attempt (0: off).",
    ),
]
SubtypeOpt = Annotated[str, typer.Option("--subtype", help="PCM_16|FLOAT sample format.")]
LufsOpt = Annotated[float, typer.Option("--lufs", help="Target integrated loudness (LUFS).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]

BatchSizeOpt = Annotated[
    int | None, typer.Option("--batch-size", help="Sentence groups decoded together (auto).")
]
ExecutorOpt = Annotated[
    str, typer.Option("--executor", help="local (this process) or ray (a Ray cluster).")
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Join this Ray cluster (host:port or auto; default $RAY_ADDRESS, else a "
        "fresh local one).",
    ),
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", help="Ray workers, one model each (one per node).")
]
CpusPerWorkerOpt = Annotated[
    float | None, typer.Option("--cpus-per-worker", help="CPUs per Ray worker (a node's CPUs).")
]
GpusPerWorkerOpt = Annotated[
    float, typer.Option("--gpus-per-worker", help="GPUs per Ray worker (0).")
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", help="Ray's own logs and progress bars too.")
]


@dataclass(frozen=True)
class SpeechFlags:
    """What `say`, `batch` and `book` ask of every text: the request's options."""

    voice: VoiceOpt = None
    language: LanguageOpt = None
    lexicon: LexiconOpt = None
    normalize: NormalizeOpt = True
    seed: SeedOpt = None
    temperature: TemperatureOpt = None
    top_p: TopPOpt = None
    top_k: TopKOpt = None
    min_p: MinPOpt = None
    repetition_penalty: RepetitionPenaltyOpt = None
    cfg_weight: CfgWeightOpt = None
    exaggeration: ExaggerationOpt = None
    steps: StepsOpt = None
    block_size: BlockSizeOpt = None
    max_new_tokens: MaxNewTokensOpt = None
    cfm_steps: CfmStepsOpt = None
    retries: RetriesOpt = RETRIES
    lufs: LufsOpt = DEFAULT_LUFS
    pause: PauseOpt = DEFAULT_PAUSE_S
    speed: SpeedOpt = 1.0
    asr_max_wer: AsrMaxWerOpt = DEFAULT_MAX_WER

    def request(self, text: str = "", streaming: bool = False, **more) -> SpeechRequest:
        """The request these flags ask for (the lexicon read here, once)."""
        from chatterbox_cli.text.markup import Lexicon

        given = {k: v for k, v in vars(self).items() if k not in ("pause", "lexicon")}
        lexicon = Lexicon.load(self.lexicon) if self.lexicon else None
        return SpeechRequest(
            text, pause_s=self.pause, lexicon=lexicon, streaming=streaming, **given, **more
        )


@dataclass(frozen=True)
class ModelFlags:
    """Which model runs, where and how (every command that loads T3)."""

    model: ModelOpt = "turbo"
    pack: PackOpt = None
    model_dir: ModelDirOpt = None
    device: DeviceOpt = "auto"
    threads: ThreadsOpt = None
    quantize: QuantizeOpt = "none"
    dtype: DtypeOpt = "auto"
    overlap: OverlapOpt = False
    asr: AsrOpt = None

    def recognizer(self):
        """`--asr`'s model folder, resolved before anything heavy loads (None: no listening)."""
        from chatterbox_cli.post.asr import resolve

        return resolve(self.asr, flag) if self.asr else None

    @property
    def name(self) -> str:
        """The family `--model` and `--pack` name together."""
        from chatterbox_cli.models.packs import pack_model

        return pack_model(self.model, self.pack)

    def runtime(self, fast_decode: bool = False, batch_s3gen: bool | None = None):
        from chatterbox_cli.runtime.device import Runtime

        return Runtime(
            self.threads, self.quantize, self.dtype, fast_decode, self.overlap, batch_s3gen
        )

    def checked(self, fast_decode: bool = False, batch_s3gen: bool | None = None):
        """(source, device, runtime), every flag checked, before anything heavy loads."""
        from chatterbox_cli.synth.loader import check_source

        runtime = self.runtime(fast_decode, batch_s3gen)
        return check_source(self.name, self.model_dir, self.device, runtime, flag)


@dataclass(frozen=True)
class JobFlags:
    """How a job of many texts (`batch`, `book`) runs: batches, and locally or on Ray."""

    batch_size: BatchSizeOpt = None
    batch_s3gen: BatchS3GenOpt = None
    executor: ExecutorOpt = "local"
    ray_address: RayAddressOpt = None
    workers: WorkersOpt = None
    cpus_per_worker: CpusPerWorkerOpt = None
    gpus_per_worker: GpusPerWorkerOpt = 0.0
    verbose: VerboseOpt = False

    def ray(self):
        """`RayOptions` for `--executor ray` (checked, Ray importable), None for local; Ray's
        flags without it are refused rather than ignored."""
        import os

        from chatterbox_cli.jobs.ray_executor import RayOptions
        from chatterbox_cli.runtime.errors import BadInput

        if self.batch_size is not None and self.batch_size < 1:
            raise BadInput("--batch-size must be >= 1")
        if self.executor == "ray":
            address = self.ray_address or os.environ.get("RAY_ADDRESS") or None
            return RayOptions(
                address, self.workers, self.cpus_per_worker, self.gpus_per_worker,
                verbose=self.verbose,
            ).check()  # fmt: skip
        if self.executor != "local":
            raise BadInput("--executor must be local or ray")
        ray_only = dict(ray_address=self.ray_address, workers=self.workers,
                        cpus_per_worker=self.cpus_per_worker,
                        gpus_per_worker=self.gpus_per_worker or None)  # fmt: skip
        given = [flag(name) for name, value in ray_only.items() if value is not None]
        if given:
            raise BadInput(f"{', '.join(given)} need --executor ray")
        return None
