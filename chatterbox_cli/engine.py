"""Model loading, device choice and the synthesis generator (groups -> tokens -> audio chunks).

Heavy imports (torch, chatterbox) happen inside functions so `chatterbox --help` stays instant.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chatterbox_cli.errors import BadInput, ModelUnavailable
from chatterbox_cli.text import TextGroup

SAMPLE_RATE = 24000
TOKENS_PER_SECOND = 25
HUB_REPO = {"turbo": "ResembleAI/chatterbox-turbo"}
MODEL_FILES = {
    "turbo": ("ve.safetensors", "t3_turbo_v1.safetensors", "s3gen_meanflow.safetensors"),
}
MODELS = tuple(HUB_REPO)
DEVICES = ("auto", "cpu", "cuda", "mps")
MAX_TOKENS_CEILING = 900
"""36 s of speech: well under upstream's hidden 1000-token (40 s) limit."""


def debug_enabled() -> bool:
    return os.environ.get("CHATTERBOX_DEBUG", "") not in ("", "0")


@contextlib.contextmanager
def upstream_quiet():
    """Upstream prints notices on stdout (our data channel) and tqdm bars on stderr (where our
    own progress goes): swallow both unless CHATTERBOX_DEBUG is set."""
    if debug_enabled():
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    sink = io.StringIO()
    with (
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def auto_max_tokens(text: str) -> int:
    """A cap no real group should reach: ~6 chars/s (slow speech) plus one second of slack."""
    return min(MAX_TOKENS_CEILING, TOKENS_PER_SECOND + math.ceil(len(text) * TOKENS_PER_SECOND / 6))


def resolve_device(name: str = "auto") -> str:
    import torch

    name = (name or "auto").lower()
    if name not in DEVICES:
        raise BadInput(f"unknown device {name!r}; use one of: {', '.join(DEVICES)}")
    has_mps = getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda: no CUDA GPU is visible to torch; use --device cpu")
    if name == "mps" and not has_mps:
        raise BadInput("--device mps: Apple MPS is not available here; use --device cpu")
    return name


def configure_device(device: str) -> None:
    import torch

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def _sync(device: str) -> None:
    """Wait for queued GPU work so wall-clock stage times are honest."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def prefetch(items: Iterator, depth: int = 0, stop=None) -> Iterator:
    """Run a generator in a worker thread, yielding its items here as they come (a queue of
    `depth` items, 0 = unbounded). Its exceptions re-raise here. When this side stops early
    (Ctrl-C, an error) it sets `stop` (which the producer's decode loops watch) and waits for
    the worker, so no torch work is left running while the process exits."""
    import queue
    import threading

    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = stop or threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((None, item)):
                    return
            put((None, done))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((exc, None))

    worker = threading.Thread(target=work, name="chatterbox-t3", daemon=True)
    worker.start()
    try:
        while True:
            exc, item = box.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=30)


def seed_everything(seed: int) -> None:
    """Seed every RNG the pipeline draws from: T3 sampling, flow noise, HiFiGAN's source."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


DTYPES = ("auto", "float32", "bfloat16", "float16")
QUANTIZE = ("none", "int8")


@dataclass(frozen=True)
class Runtime:
    """How the model runs: threads, int8 weights (CPU), autocast dtype (T3 and flow)."""

    threads: int | None = None
    quantize: str = "none"
    dtype: str = "auto"
    fast_decode: bool = False
    overlap: bool = False

    def check(self, device: str) -> Runtime:
        """Validate against the resolved device; `auto` dtype becomes a concrete one."""
        import torch

        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise BadInput("--threads must be >= 1")
        if self.quantize not in QUANTIZE:
            raise BadInput(f"--quantize must be one of: {', '.join(QUANTIZE)}")
        if self.quantize == "int8" and device != "cpu":
            raise BadInput("--quantize int8 is for CPU; on a GPU use --dtype bfloat16")
        dtype = self.dtype.lower()
        if dtype not in DTYPES:
            raise BadInput(f"--dtype must be one of: {', '.join(DTYPES)}")
        if dtype == "auto":
            bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
            dtype = "bfloat16" if bf16 else "float32"
        if dtype == "float16" and device != "cuda":
            raise BadInput("--dtype float16 needs --device cuda; use bfloat16 or float32")
        if dtype == "bfloat16" and device == "mps":
            raise BadInput("--dtype bfloat16 is not supported on mps; use float32")
        return Runtime(self.threads, self.quantize, dtype, self.fast_decode, self.overlap)

    def apply(self) -> None:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)


@dataclass(frozen=True)
class SamplingParams:
    """Upstream Turbo's `generate()` defaults."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 1000
    repetition_penalty: float = 1.2

    def check(self) -> SamplingParams:
        if not self.temperature > 0:
            raise BadInput("--temperature must be > 0")
        if not 0 < self.top_p <= 1:
            raise BadInput("--top-p must be in (0, 1]")
        if self.top_k < 0:
            raise BadInput("--top-k must be >= 0 (0 disables it)")
        if not self.repetition_penalty > 0:
            raise BadInput("--repetition-penalty must be > 0")
        return self


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from: a local checkpoint directory, else the Hugging Face Hub."""

    kind: str = "turbo"
    model_dir: Path | None = None

    def describe(self) -> str:
        return str(self.model_dir) if self.model_dir else f"hf://{HUB_REPO[self.kind]}"

    def check(self) -> None:
        """Fail fast (before any heavy import) on a model dir that can't be a checkpoint."""
        if self.kind not in HUB_REPO:
            raise BadInput(f"unknown model {self.kind!r}; available: {', '.join(MODELS)}")
        if self.model_dir is None:
            return
        d = self.model_dir
        if not d.is_dir():
            raise ModelUnavailable(f"model dir {d} does not exist; pass --model-dir DIR")
        missing = [f for f in MODEL_FILES[self.kind] if not (d / f).is_file()]
        if not (d / "tokenizer.json").is_file() and not (d / "vocab.json").is_file():
            missing.append("tokenizer.json")
        if missing:
            raise ModelUnavailable(
                f"model dir {d} lacks {', '.join(missing)}; "
                f"point --model-dir at a Chatterbox {self.kind} checkpoint"
            )

    @property
    def has_builtin_voice(self) -> bool | None:
        """None when unknown before loading (hub)."""
        return (self.model_dir / "conds.pt").is_file() if self.model_dir else None


@dataclass
class AudioChunk:
    """One synthesized group, before post-processing, with the metrics that belong to it."""

    group: TextGroup
    audio: np.ndarray
    sample_rate: int
    speech_tokens: list[int]
    stopped: bool
    text_s: float
    t3_prefill_s: float
    t3_decode_s: float
    flow_s: float
    hifigan_s: float
    synth_s: float
    last: bool = True
    """False for the early pieces of a token-streamed group."""
    offset: int = 0
    """Samples of this group emitted in earlier pieces."""

    @property
    def duration_s(self) -> float:
        """The group's audio so far (all of it on the last piece)."""
        return (self.offset + len(self.audio)) / self.sample_rate

    @property
    def s3gen_s(self) -> float:
        return self.flow_s + self.hifigan_s


@dataclass
class Job:
    """One group to synthesize in a batch, with its own voice, sampling and seed."""

    group: TextGroup
    conds: Any
    params: SamplingParams
    max_new_tokens: int
    seed: int | None = None


@dataclass
class Engine:
    """A loaded upstream `ChatterboxTurboTTS` plus our decode loop."""

    tts: Any
    device: str
    source: ModelSource
    load_s: float
    builtin_voice: Any = None
    sample_rate: int = SAMPLE_RATE
    dtype: str = "float32"
    """Autocast dtype for T3 and the flow; HiFiGAN always runs in float32 (it fails in bf16)."""
    quantize: str = "none"
    fast_decode: bool = False
    """Static KV cache for single-stream decoding (plus CUDA graphs on CUDA); opt-in."""
    overlap: bool = False
    """Run T3 (next group / batch) in a worker thread while S3Gen renders the current one
    (`--overlap`). Off by default: on 2 CPU cores it was a wash or worse (both halves share
    the cores; with int8 streaming it made totals 1.4x slower); meant to be measured on CUDA.
    """
    _fast: Any = field(default=None, repr=False)
    prefix_cache: bool = True
    """Reuse T3's KV cache over a voice's conditioning across groups (False: upstream's exact
    arithmetic, recomputed per group as `generate()` does)."""
    _prefixes: dict = field(default_factory=dict, repr=False)

    def amp(self):
        """A fresh autocast context (one per forward call, so it never leaks past a yield)."""
        import torch

        if self.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(self.device, dtype=getattr(torch, self.dtype))

    def fast_step(self):
        from chatterbox_cli.t3_decode import FastStep

        if not self.fast_decode:
            return None
        if self._fast is None:
            self._fast = FastStep(self.tts.t3, compile=self.device == "cuda")
        return self._fast

    def prefix(self, t3_cond):
        """The voice's T3 prefix cache, built on first use (the last few voices are kept)."""
        from chatterbox_cli.t3_decode import Prefix

        if not self.prefix_cache:
            return None
        key = id(t3_cond)
        if key not in self._prefixes:
            if len(self._prefixes) >= 4:
                self._prefixes.pop(next(iter(self._prefixes)))
            self._prefixes[key] = Prefix.build(self.tts.t3, t3_cond, self.amp)
        return self._prefixes[key]

    @property
    def watermarker(self):
        return self.tts.watermarker

    def prepare_reference(self, path: Path):
        """Upstream `prepare_conditionals` on a reference clip; returns its `Conditionals`."""
        import torch

        with upstream_quiet(), torch.inference_mode():
            self.tts.prepare_conditionals(str(path))
        conds, self.tts.conds = self.tts.conds, self.builtin_voice
        return conds

    def text_tokens(self, text: str):
        """Exactly upstream's text path: punc_norm, then the GPT-2 tokenizer."""
        from chatterbox.tts_turbo import punc_norm

        ids = self.tts.tokenizer(
            punc_norm(text), return_tensors="pt", padding=True, truncation=True
        )
        return ids.input_ids.to(self.device)

    def synthesize(
        self,
        groups: Iterable[TextGroup],
        conds,
        params: SamplingParams | None = None,
        max_new_tokens: int | Sequence[int] | None = None,
        seed: int | None = None,
        cfm_steps: int = 2,
        stream_tokens: int | None = None,
        overlap: bool | None = None,
    ) -> Iterator[AudioChunk]:
        """Yield one `AudioChunk` per group, as soon as it is ready; with `stream_tokens` N,
        several per group (audio every N speech tokens, see s3gen_stream.py).

        `max_new_tokens`: one cap for every group, one cap per group, or None (sized from text).
        With `overlap`, T3 runs ahead in a thread (its own RNG) while S3Gen renders in this
        one; without, the RNG calls follow upstream `generate()` exactly.
        """
        import torch

        from chatterbox_cli.t3_decode import SPEECH_VOCAB

        params = params or SamplingParams()
        overlap = self.overlap if overlap is None else overlap
        if seed is not None:
            seed_everything(seed)
        generator = stop = first_out = None
        if overlap:
            import threading

            t3_seed = seed if seed is not None else random.getrandbits(62)
            generator = torch.Generator(device=self.device).manual_seed(t3_seed)
            stop, first_out = threading.Event(), threading.Event()
        events = self._t3_events(
            list(groups), conds, params, max_new_tokens, generator, stop, first_out, stream_tokens
        )
        if overlap:
            events = prefetch(events, stop=stop)
        streamer = None
        for event in events:
            if event[0] == "start":
                _, i, group, cap, stats, text_s, t0 = event
                tokens: list[int] = []
                if stream_tokens:
                    noise_seed = None if seed is None else seed * 1_000_003 + i
                    streamer = self._streamer(conds, cap, stream_tokens, cfm_steps, noise_seed)
                    offset = 0
            elif event[0] == "token":
                if streamer is None:
                    tokens.append(event[1])
                elif event[1] < SPEECH_VOCAB:
                    audio = streamer.push(event[1])
                    if audio is not None and len(audio):
                        if first_out is not None:
                            first_out.set()
                        yield self._piece(group, streamer, stats, text_s, t0, audio, offset)
                        offset += len(audio)
            else:
                if streamer is None:
                    chunk = self._to_audio(group, tokens, conds, cfm_steps, stats, text_s, t0)
                else:
                    chunk = self._finish_stream(group, streamer, stats, text_s, t0, offset)
                if first_out is not None:
                    first_out.set()
                yield chunk

    def _t3_events(
        self,
        groups,
        conds,
        params,
        max_new_tokens,
        generator,
        stop=None,
        first_out=None,
        stream_tokens=None,
    ):
        """T3 for every group: ("start", i, group, cap, stats, text_s, t0), then ("token", id)
        per sampled token, then ("end",).

        With `first_out` (overlap), T3 waits for the first audio before going past what it
        needs (the first group, or the first piece's tokens): on a shared CPU, running ahead
        sooner only slows the first audio down."""
        import torch

        from chatterbox_cli.t3_decode import SPEECH_VOCAB, DecodeStats, decode

        def hold() -> bool:
            while first_out is not None and not first_out.wait(0.05):
                if stop is not None and stop.is_set():
                    return False
            return True

        hold_at = stream_tokens + 3 if stream_tokens else None
        t3 = self.tts.t3
        for i, group in enumerate(groups):
            if i == 1 and not hold():
                return
            t0 = time.perf_counter()
            stats = DecodeStats()
            cap = max_new_tokens[i] if isinstance(max_new_tokens, Sequence) else max_new_tokens
            cap = cap or auto_max_tokens(group.text)
            with torch.inference_mode():
                ids = self.text_tokens(group.text)
                prefix = self.prefix(conds.t3)
            yield ("start", i, group, cap, stats, time.perf_counter() - t0, t0)
            tokens = decode(
                t3,
                conds.t3,
                ids,
                params,
                cap,
                stats,
                prefix,
                self.amp,
                self.fast_step(),
                generator,
                stop,
            )
            kept = 0
            for token in tokens:
                if i == 0 and kept == hold_at and not hold():
                    return
                kept += int(token[0]) < SPEECH_VOCAB
                yield ("token", int(token[0]))
            yield ("end",)

    def _streamer(self, conds, cap, every, cfm_steps, noise_seed):
        """A `TokenStreamer` whose S3Gen noise comes from its own generator (seeded from --seed
        and the group), so T3 samples the same tokens as without token streaming."""
        import torch

        from chatterbox_cli.s3gen_stream import GroupNoise, TokenStreamer, prompt_frames

        s3gen = self.tts.s3gen
        if noise_seed is None:
            noise_seed = random.getrandbits(62)
        generator = torch.Generator(device=self.device).manual_seed(noise_seed % 2**63)
        noise = GroupNoise.draw(s3gen, prompt_frames(conds.gen), cap, generator)
        return TokenStreamer(s3gen, conds.gen, noise, every, cfm_steps, amp=self.amp)

    def _piece(self, group, streamer, stats, text_s, t0, audio, offset, last=False):
        return AudioChunk(
            group=group,
            audio=audio,
            sample_rate=self.sample_rate,
            speech_tokens=list(streamer.tokens),
            stopped=stats.stopped,
            text_s=text_s,
            t3_prefill_s=stats.prefill_s,
            t3_decode_s=stats.decode_s,
            flow_s=streamer.flow_s,
            hifigan_s=streamer.vocode_s,
            synth_s=time.perf_counter() - t0,
            last=last,
            offset=offset,
        )

    def _finish_stream(self, group, streamer, stats, text_s, t0, offset):
        from chatterbox.models.s3gen.const import S3GEN_SIL

        audio = streamer.finish([S3GEN_SIL] * 3)
        del streamer.tokens[-3:]
        return self._piece(group, streamer, stats, text_s, t0, audio, offset, last=True)

    def synthesize_batch(self, jobs: list[Job], cfm_steps: int = 2) -> list[AudioChunk]:
        """T3 for all jobs in one batched decode, then S3Gen per job.

        A job with a seed gets its own T3 generator and a seeded S3Gen, so its audio does not
        depend on what else is in the batch. T3 time is shared equally among the jobs.
        """
        return self.render_jobs(jobs, self.decode_jobs(jobs), cfm_steps)

    def synthesize_batches(self, batches: Iterable[list[Job]], cfm_steps: int = 2):
        """`synthesize_batch` over consecutive batches, with T3 for the next batch running (in a
        thread, with `overlap`) while S3Gen renders this one. Yields each batch's chunks, or the
        exception that batch raised (the others go on)."""

        import threading

        stop = threading.Event()

        def decoded():
            for jobs in batches:
                try:
                    yield jobs, self.decode_jobs(jobs, stop)
                except Exception as exc:
                    yield jobs, exc

        pairs = prefetch(decoded(), depth=1, stop=stop) if self.overlap else decoded()
        for jobs, result in pairs:
            if isinstance(result, Exception):
                yield result
                continue
            try:
                yield self.render_jobs(jobs, result, cfm_steps)
            except Exception as exc:
                yield exc

    def decode_jobs(self, jobs: list[Job], stop=None):
        """The T3 half of `synthesize_batch`: (tokens per job, stats share, text seconds).

        With `overlap`, unseeded rows get a generator too, so T3 in its thread never draws
        from the global RNG that seeded S3Gen calls use."""
        import torch

        from chatterbox_cli.t3_decode import DecodeStats, Row, decode_batch

        t0 = time.perf_counter()
        rows = []
        for job in jobs:
            generator = None
            if job.seed is not None or self.overlap:
                seed = job.seed if job.seed is not None else random.getrandbits(62)
                generator = torch.Generator(device=self.device).manual_seed(seed)
            ids = self.text_tokens(job.group.text)
            rows.append(Row(job.conds.t3, ids, job.params, job.max_new_tokens, generator))
        text_s = (time.perf_counter() - t0) / len(jobs)
        stats = DecodeStats()
        shared = all(job.conds is jobs[0].conds for job in jobs)
        prefix = self.prefix(jobs[0].conds.t3) if shared else None
        tokens = decode_batch(self.tts.t3, rows, stats, prefix, self.amp, stop)
        share = DecodeStats(stats.prefill_s / len(jobs), stats.decode_s / len(jobs))
        return tokens, share, text_s

    def render_jobs(self, jobs: list[Job], decoded, cfm_steps: int = 2) -> list[AudioChunk]:
        """The S3Gen half of `synthesize_batch`."""
        tokens, share, text_s = decoded
        chunks = []
        for job, row_tokens in zip(jobs, tokens, strict=True):
            if job.seed is not None:
                seed_everything(job.seed)
            share.stopped = len(row_tokens) < job.max_new_tokens
            start = time.perf_counter() - text_s - share.prefill_s - share.decode_s
            chunks.append(
                self._to_audio(job.group, row_tokens, job.conds, cfm_steps, share, text_s, start)
            )
        return chunks

    def _to_audio(self, group, tokens, conds, cfm_steps, stats, text_s, t0) -> AudioChunk:
        """Upstream's tail of `generate()`: drop ids >= 6561, add 3 silence tokens, S3Gen."""
        import torch
        from chatterbox.models.s3gen.const import S3GEN_SIL

        from chatterbox_cli.t3_decode import SPEECH_VOCAB

        kept = [t for t in tokens if t < SPEECH_VOCAB]
        with torch.inference_mode():
            speech = torch.tensor([*kept, S3GEN_SIL, S3GEN_SIL, S3GEN_SIL], device=self.device)
            t1 = time.perf_counter()
            mels = self._flow(speech, conds.gen, cfm_steps)
            t2 = time.perf_counter()
            audio = self._vocode(mels).squeeze(0).float().cpu().numpy()
        end = time.perf_counter()
        return AudioChunk(
            group=group,
            audio=audio,
            sample_rate=self.sample_rate,
            speech_tokens=kept,
            stopped=stats.stopped,
            text_s=text_s,
            t3_prefill_s=stats.prefill_s,
            t3_decode_s=stats.decode_s,
            flow_s=t2 - t1,
            hifigan_s=end - t2,
            synth_s=end - t0,
        )

    def _flow(self, speech_tokens, ref_dict: dict, cfm_steps: int):
        """`S3Token2Wav.inference` is flow then HiFiGAN; called apart to time each stage."""
        s3gen = self.tts.s3gen
        with upstream_quiet(), self.amp():
            mels = s3gen.flow_inference(
                speech_tokens, ref_dict=ref_dict, n_cfm_timesteps=cfm_steps, finalize=True
            )
        _sync(self.device)
        return mels.to(dtype=s3gen.dtype)

    def _vocode(self, mels):
        s3gen = self.tts.s3gen
        wav, _ = s3gen.hift_inference(mels, None)
        wav[:, : len(s3gen.trim_fade)] *= s3gen.trim_fade  # upstream's fade-in, as in inference()
        return wav


_CACHE: dict[tuple[ModelSource, str, str], Engine] = {}


def _hub_error(exc: BaseException, source: ModelSource) -> ModelUnavailable:
    repo = HUB_REPO[source.kind]
    name = type(exc).__name__
    if "GatedRepo" in name or "RepositoryNotFound" in name:
        return ModelUnavailable(
            f"the Hugging Face Hub refused {repo} ({name}); log in (`hf auth login` or HF_TOKEN) "
            "or pass --model-dir DIR"
        )
    return ModelUnavailable(
        f"model weights for {repo} are not in the Hugging Face cache and the hub can't be "
        f"reached ({name}); go online once to download them, point HF_HOME at a cache that has "
        "them, or pass --model-dir DIR (env CHATTERBOX_MODEL_DIR)"
    )


def load_engine(
    source: ModelSource, device: str = "auto", runtime: Runtime | None = None
) -> Engine:
    """Load (once per process and quantization) the upstream model for `source` on `device`."""
    source.check()
    device = resolve_device(device)
    runtime = (runtime or Runtime()).check(device)
    runtime.apply()
    key = (source, device, runtime.quantize)
    if key in _CACHE:
        engine = _CACHE[key]
        engine.dtype, engine.fast_decode = runtime.dtype, runtime.fast_decode
        engine.overlap = runtime.overlap
        return engine
    configure_device(device)
    t0 = time.perf_counter()
    with upstream_quiet():
        import perth

        if perth.PerthImplicitWatermarker is None:
            raise ModelUnavailable(
                "Perth's watermarker failed to import (it needs pkg_resources); "
                "reinstall with `pip install 'setuptools<81'`"
            )
        from chatterbox_cli.loading import load_turbo

        model_dir = source.model_dir or _hub_snapshot(source)
        tts = load_turbo(model_dir, device, runtime.quantize)
    engine = Engine(
        tts=tts,
        device=device,
        source=source,
        load_s=time.perf_counter() - t0,
        dtype=runtime.dtype,
        quantize=runtime.quantize,
        fast_decode=runtime.fast_decode,
        overlap=runtime.overlap,
    )
    engine.builtin_voice = tts.conds
    _CACHE[key] = engine
    return engine


def hub_cached(kind: str = "turbo") -> bool:
    """Whether the hub weights are already in the local Hugging Face cache (no network)."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(HUB_REPO[kind], local_files_only=True))
    except Exception:
        return False
    return all((path / f).is_file() for f in MODEL_FILES[kind])


def _hub_snapshot(source: ModelSource) -> Path:
    """Upstream `from_pretrained`'s download (same files), mapped to one-line errors."""
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import snapshot_download

    expected = (
        hf_errors.LocalEntryNotFoundError,
        hf_errors.OfflineModeIsEnabled,
        hf_errors.HfHubHTTPError,
        ConnectionError,
        TimeoutError,
    )
    with contextlib.suppress(ImportError):
        import httpx

        expected = (*expected, httpx.TransportError)
    try:
        return Path(
            snapshot_download(
                repo_id=HUB_REPO[source.kind],
                token=os.getenv("HF_TOKEN") or None,
                allow_patterns=["*.safetensors", "*.json", "*.txt", "*.pt", "*.model"],
            )
        )
    except expected as exc:
        raise _hub_error(exc, source) from exc
    except OSError as exc:
        if "connect" in str(exc).lower() or "offline" in str(exc).lower():
            raise _hub_error(exc, source) from exc
        raise
