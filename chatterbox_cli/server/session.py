"""One speech request on the server, from checked input to encoded bytes.

text -> groups -> batch jobs (`plan`) -> the shared scheduler -> chunks, seen from asyncio
(`Synthesis`) -> post-processing as `say` does it (whole-file loudness when buffered,
`StreamLeveler` when streamed; the watermark either way) -> bytes (`sinks.stream`).
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, create_model

from chatterbox_cli.models.sampling import KNOBS, SamplingParams
from chatterbox_cli.runtime.errors import BadInput, ChatterboxError, VoiceError
from chatterbox_cli.server.scheduler import Cancelled, Ticket
from chatterbox_cli.sinks.provenance import record
from chatterbox_cli.sinks.stream import StreamEncoder
from chatterbox_cli.synth.batched import Job
from chatterbox_cli.synth.judge import Judge
from chatterbox_cli.synth.pipeline import finish as finish_audio
from chatterbox_cli.synth.pipeline import silence_s
from chatterbox_cli.synth.request import OPENAI_SPEEDS, SpeechRequest
from chatterbox_cli.synth.retry import Flagged, retry_flagged
from chatterbox_cli.synth.seeds import group_seed

RESPONSE_FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg", "opus": "audio/ogg",
                    "flac": "audio/flac", "pcm": "audio/pcm"}  # fmt: skip
"""OpenAI's formats; `pcm` is raw 16-bit little-endian mono at 24 kHz, as there."""
DEFAULT_VOICES = ("", "default", "builtin")


class PostThread:
    """An app's post-processing thread (made and closed by its lifespan): every request's
    loudness, Perth watermark and encoding run on this one thread. Perth is one torch module,
    and one thread keeps one malloc arena and one set of CPU kernel caches, where starlette's
    pool spreads them over up to 40 threads (measured: the server's RSS kept growing over a
    few hundred requests that way)."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="chatterbox-post")

    async def __call__(self, fn, *args):
        """`fn(*args)` on the post-processing thread."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class SpeechBody(BaseModel):
    """OpenAI's `/v1/audio/speech` body, plus our extras (seed, language, cap)."""

    model_config = ConfigDict(extra="forbid")
    input: str
    model: str | None = None
    voice: str | None = None
    response_format: str = "mp3"
    speed: float = 1.0
    stream_format: Literal["audio", "sse"] | None = None
    instructions: str | None = None
    language: str | None = None
    seed: int | None = None
    max_new_tokens: int | None = None
    normalize: bool = True
    """Numbers, money, dates, units and symbols said in words (false: read as written)."""
    timestamps: bool = False
    """When each sentence group is said: a JSON reply with the audio and its segments, or an
    SSE `timestamps` event after each group's audio."""


Speech = create_model(
    "Speech",
    __base__=SpeechBody,
    **{k: (type(getattr(SamplingParams(), k)) | None, None) for k in KNOBS},
)
"""The body with every sampling knob as a field (named as `SamplingParams` names it)."""


class Timeout(ChatterboxError):
    """A request ran past --request-timeout (HTTP 504)."""


@dataclass
class Plan:
    fmt: str
    groups: list
    jobs: list
    opts: object
    """pipeline.RenderOptions: pause and loudness target, as `say` uses them."""
    provenance: dict
    """What made the reply, as `say` records it in its files."""
    timestamps: bool = False
    """The client asked when each group is said."""


class Voices:
    """The server's view of the voice store: a request names a cached voice (never a path, so
    clients can't read files) or the default (`serve --voice`, else the built-in)."""

    def __init__(self, engine, default=None):
        from chatterbox_cli.synth.voices import VoiceStore

        self.default = default
        self.store = VoiceStore.of(engine)

    def get(self, name: str | None, lock) -> tuple[object, str]:
        """(conditionals, provenance voice id) for a request's `voice`, prepared under the
        engine's `lock`."""
        from chatterbox_cli.models import voices

        name = (name or "").strip()
        if name.lower() in DEFAULT_VOICES:
            spec = self.default
            voice = self.store.get(spec.path if spec else None, spec, lock)
            return voice.conds, voice.id
        path = voices.voices_dir() / f"{name}.pt"
        if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
            raise VoiceError(f"unknown voice {name!r}; GET /v1/audio/voices lists the voices")
        voice = self.store.get(path, None, lock)
        return voice.conds, voice.id


def plan(engine, req: Speech, voices: Voices, options, lock, streaming=False) -> Plan:
    """Check a request (the one `SpeechRequest.plan`, fields named as the client sent them)
    and cut it into batch jobs (one per sentence group), as `batch` does: a seeded request
    gives the same audio alone or among others. A stream starts with one short sentence, as
    `say -o -` does, so its first audio comes sooner."""

    fmt = req.response_format.lower()
    if fmt not in RESPONSE_FORMATS:
        raise BadInput(f"response_format must be one of: {', '.join(RESPONSE_FORMATS)}")
    if req.timestamps and req.stream_format == "audio":
        raise BadInput("timestamps come with a buffered reply or stream_format sse, not audio")
    if req.instructions:
        raise BadInput(
            "instructions are not supported: use exaggeration (standard model) or a voice"
        )
    if len(req.input) > options.max_text_chars:
        raise TooLong(f"input is longer than {options.max_text_chars} characters; split it")
    asked = SpeechRequest(
        req.input, voice=req.voice, language=req.language, seed=req.seed, speed=req.speed,
        max_new_tokens=req.max_new_tokens, lexicon=options.lexicon, streaming=streaming,
        normalize=req.normalize, **{k: getattr(req, k) for k in KNOBS},
    )  # fmt: skip
    checked = asked.plan(engine.family, speeds=OPENAI_SPEEDS)
    opts = checked.options
    conds, voice_id = voices.get(req.voice, lock)
    marked = {name: voices.get(name, lock)[0] for name in checked.voices}
    jobs = [
        Job(
            g,
            marked.get(g.voice, conds),
            opts.sampling,
            opts.cap(g),
            group_seed(opts.seed, g.index),
        )
        for g in checked.groups
    ]
    made = record(
        engine, voice=voice_id, seed=req.seed, sampling=opts.sampling, text=req.input,
        cfm_steps=None, said=checked.groups,
    )  # fmt: skip
    return Plan(fmt, list(checked.groups), jobs, opts, made, req.timestamps)


class TooLong(BadInput):
    """Input over --max-text-chars (HTTP 413)."""


class Exists(BadInput):
    """A voice of that name exists already (HTTP 409)."""


class Synthesis:
    """One request on the scheduler, seen from asyncio: its chunks in group order."""

    def __init__(self, scheduler, plan: Plan, timeout_s: float | None):

        loop = asyncio.get_running_loop()
        self.plan, self.queue = plan, asyncio.Queue()
        self.scheduler, self.engine = scheduler, scheduler.engine
        listener = scheduler.listener
        self.judge = Judge(False, listener, plan.opts.asr_max_wer) if listener else None
        """With `serve --asr`: each group is heard as it arrives (`server/listening.py`)."""
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self.ticket = Ticket(
            plan.jobs, lambda item: loop.call_soon_threadsafe(self.queue.put_nowait, item)
        )
        self.t0 = time.perf_counter()
        self.ttfa_s: float | None = None
        self.chunks_seen: list = []
        scheduler.submit(self.ticket)

    def cancel(self) -> None:
        self.ticket.cancel()

    async def chunks(
        self, disconnected: Callable[[], Awaitable[bool]] | None = None
    ) -> AsyncIterator:
        """Each Synthesized as the scheduler makes it; polls `disconnected` while waiting and
        cancels the work when it says so (or on a timeout, or when the caller stops)."""
        try:
            while True:
                item = await self._next(disconnected)
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                if self.ttfa_s is None:
                    self.ttfa_s = time.perf_counter() - self.t0
                self.chunks_seen.append(item)
                if self.judge is not None:
                    self.judge.listen(item)
                yield item
        finally:
            if len(self.chunks_seen) < len(self.plan.jobs):
                self.cancel()

    def left_s(self) -> float | None:
        """Seconds left before --request-timeout (None: no limit)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def timeout(self) -> Timeout:
        return Timeout(f"the request took longer than {self.timeout_s:g} s")

    def close(self) -> None:
        if self.judge is not None:
            self.judge.close()

    async def _next(self, disconnected):

        while True:
            wait = 0.25 if disconnected is not None else None
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise self.timeout()
                wait = left if wait is None else min(wait, left)
            try:
                item = await asyncio.wait_for(self.queue.get(), wait)
            except TimeoutError:
                if disconnected is not None and await disconnected():
                    raise Cancelled("the client disconnected") from None
                continue
            return item

    def stats(self) -> dict:
        """What `say --json` reports, for this request so far."""
        chunks = self.chunks_seen
        audio_s = sum(c.duration_s for c in chunks) / self.plan.opts.speed
        pauses = silence_s([c.group for c in chunks], self.plan.opts.pause_s)
        elapsed = time.perf_counter() - self.t0
        t = self.ticket
        return {
            "groups": len(chunks),
            "groups_total": len(self.plan.jobs),
            "speech_tokens": sum(len(c.speech_tokens) for c in chunks),
            "audio_s": round(audio_s + pauses, 3),
            "ttfa_s": None if self.ttfa_s is None else round(self.ttfa_s, 3),
            "queue_wait_s": None if t.started is None else round(t.started - t.admitted, 3),
            "elapsed_s": round(elapsed, 3),
            "synth_s": round(sum(c.synth_s for c in chunks), 3),
            "rtf": round(elapsed / (audio_s + pauses), 3) if audio_s else None,
        }


def finish(engine, plan: Plan, chunks: list, judge=None):
    """Buffered: the whole request as `say` writes a file (join, loudness, watermark), and
    where each group landed (with the words heard, when listened to)."""

    opts = plan.opts
    words = {c.group.index: judge.heard(c).words for c in chunks} if judge else None
    return finish_audio(engine, chunks, opts.pause_s, opts.lufs, opts.speed, words)


def level(leveler, enc: StreamEncoder, chunk) -> bytes:
    """One chunk's leveled, watermarked pieces, encoded (on the post-processing thread)."""
    return b"".join(enc.feed(p) for p in leveler.pieces(chunk))


# Listening back (`serve --asr`, per model): each group of a reply is heard while the next is
# synthesized (`synth.judge`).
def heard_row(chunk, heard, found=(), tries: int = 0) -> dict:
    """One group as reported: what was heard, how far off its text, its flags and retries."""
    return {
        "index": chunk.group.index,
        "transcript": heard.transcript,
        "wer": round(heard.wer, 4),
        "unit": heard.unit,
        "flags": list(found),
        "retries": tries,
    }


async def heard(syn, chunks) -> list[dict]:
    """A stream's groups as heard (waited for without blocking the event loop)."""
    judge, rows = syn.judge, []
    for chunk in chunks:
        judge.listen(chunk)
        got = await asyncio.wrap_future(judge.future(chunk))
        rows.append(heard_row(chunk, got, judge.flags(chunk)))  # heard: flags() won't wait
    return rows


def settle(syn, chunks: list) -> list[dict]:
    """A buffered reply's verdicts (the guard's symptoms, `asr-mismatch`): flagged groups are
    synthesized again through the shared scheduler, as `say` retries them (up to the request's
    `retries`), the best attempt kept in place in `chunks`. A stream's audio is already sent,
    so its groups are only reported (`heard`). Runs on a worker thread: it waits for the
    scheduler and the recognizer."""
    judge, plan, scheduler = syn.judge, syn.plan, syn.scheduler
    flagged = []
    for i, chunk in enumerate(chunks):
        found = judge.flags(chunk)
        if found:
            flagged.append(Flagged(plan.jobs[i], plan.opts.seed, chunk, found))

    def redo(jobs):
        got: queue.SimpleQueue = queue.SimpleQueue()
        ticket = Ticket(list(jobs), got.put)
        scheduler.submit(ticket)
        try:
            ended = None
            for _ in jobs:
                item = ended or got.get(timeout=syn.left_s())
                if isinstance(item, BaseException):
                    ended = item  # the ticket is over: the rest end with it
                yield item
        except queue.Empty:
            raise syn.timeout() from None
        finally:
            ticket.cancel()

    settled = retry_flagged(flagged, redo, plan.opts.retries, judge)
    by_index = {f.job.group.index: f for f in settled}
    rows = []
    for i, chunk in enumerate(chunks):
        f = by_index.get(chunk.group.index)
        chunks[i] = f.best if f else chunk
        found, tries = (f.found, f.tries) if f else ([], 0)
        rows.append(heard_row(chunks[i], judge.heard(chunks[i]), found, tries))
    return rows
