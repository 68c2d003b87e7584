"""Many requests, one model (`chatterbox serve`): the sentence groups of every waiting request
join one batched T3 decode (batched.decode_jobs), then S3Gen renders them group by group and
each chunk goes straight back to its own request.

One worker thread owns the model. A batch is planned at each batch boundary: every live
request gives its next group (a new request only its first, so its first audio comes soon),
then requests already under way fill the free rows in arrival order. A request that arrives
while a batch runs joins the next one. A cancelled request's rows end at the next decode step
and its groups are not rendered; a batch that fails fails only the requests in it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chatterbox_cli.runtime.device import release_memory
from chatterbox_cli.runtime.errors import ChatterboxError
from chatterbox_cli.synth.batched import Job, decode_jobs, default_batch_size, render_jobs

TRIM_EVERY_S = 5.0
"""When idle after work, the worker gives freed memory back (runtime.release_memory), at most
this often: RSS stays flat over hundreds of requests."""


class QueueFull(ChatterboxError):
    """The server holds --max-queue requests already (HTTP 429)."""


class Cancelled(Exception):
    """What a cancelled request's waiter gets instead of more audio."""


_ids = itertools.count(1)


@dataclass(eq=False)
class Ticket:
    """One request in the scheduler: its groups as batch jobs and where their chunks go.

    `deliver` is called on the worker thread with each Synthesized in group order, then with
    None when all are done, or with an exception (which ends the ticket)."""

    jobs: list[Job]
    deliver: Callable[[object], None]
    id: int = field(default_factory=lambda: next(_ids))
    cancelled: threading.Event = field(default_factory=threading.Event)
    admitted: float = field(default_factory=time.perf_counter)
    started: float | None = None
    """When its first group entered a decode: queue wait = started - admitted."""
    planned: int = 0
    rendered: int = 0

    def __post_init__(self):
        for job in self.jobs:
            job.cancelled = self.cancelled.is_set

    def cancel(self) -> None:
        self.cancelled.set()


class Scheduler:
    """The worker thread and its queue. `lock` is held while the model runs; hold it for other
    model work (preparing a voice) so that it happens between batches."""

    listener = None
    """`post.asr.Listener` that hears this model's replies (`serve --asr`), else None."""

    def __init__(self, engine, max_queue=64, batch_size=None, on_cancel=lambda: None):
        self.engine = engine
        self.on_cancel = on_cancel
        self.max_queue = max_queue
        self.batch_size = batch_size or default_batch_size(engine.family)
        self.lock = threading.RLock()
        self.tickets: list[Ticket] = []
        self.wake = threading.Condition()
        self.closed = False
        self.batches = 0
        self.trimmed_at, self.trim_after = 0, 0.0
        self.thread = threading.Thread(target=self._run, name="chatterbox-scheduler", daemon=True)
        self.thread.start()

    @property
    def depth(self) -> int:
        """Requests admitted and not yet finished."""
        with self.wake:
            return len(self.tickets)

    def submit(self, ticket: Ticket) -> None:
        with self.wake:
            if self.closed:
                raise QueueFull("the server is shutting down")
            if len(self.tickets) >= self.max_queue:
                raise QueueFull(f"the server is busy ({self.max_queue} requests queued)")
            self.tickets.append(ticket)
            self.wake.notify()

    def close(self) -> None:
        """Cancel what is left; the worker stops at the next decode step (without blocking the
        caller, the server's event loop, while it finishes that step)."""
        with self.wake:
            self.closed = True
            for t in self.tickets:
                t.cancel()
            self.wake.notify()

    def _plan(self) -> list[tuple[Ticket, Job]]:
        with self.wake:
            while not self.closed and not any(self._open(t) for t in self.tickets):
                self._drop_finished()
                if self.batches > self.trimmed_at and time.monotonic() > self.trim_after:
                    self.trimmed_at, self.trim_after = self.batches, time.monotonic() + TRIM_EVERY_S
                    release_memory()
                    continue
                self.wake.wait()
            self._drop_finished()
            live = [t for t in self.tickets if self._open(t)]
        picked: list[tuple[Ticket, Job]] = []
        new = {t.id for t in live if t.planned == 0}
        for t in live:
            if len(picked) < self.batch_size:
                picked.append((t, t.jobs[t.planned]))
                t.planned += 1
        for t in live:
            while t.id not in new and len(picked) < self.batch_size and self._open(t):
                picked.append((t, t.jobs[t.planned]))
                t.planned += 1
        now = time.perf_counter()
        for t, _ in picked:
            t.started = t.started or now
        return picked

    @staticmethod
    def _open(t: Ticket) -> bool:
        return not t.cancelled.is_set() and t.planned < len(t.jobs)

    def _drop_finished(self) -> None:
        """Under `wake`: forget tickets that are cancelled or fully rendered."""
        keep = []
        for t in self.tickets:
            if t.cancelled.is_set():
                _send(t, Cancelled())
                self.on_cancel()
            elif t.rendered < len(t.jobs):
                keep.append(t)
        self.tickets = keep

    def _run(self) -> None:
        while True:
            picked = self._plan()
            if self.closed:
                with self.wake:
                    self._drop_finished()
                return
            if picked:
                self._batch(picked)

    def _batch(self, picked: list[tuple[Ticket, Job]]) -> None:
        jobs = [job for _, job in picked]
        try:
            with self.lock:
                tokens, share, text_s = decode_jobs(self.engine, jobs)
                self.batches += 1
                live = [(t, j, r) for (t, j), r in zip(picked, tokens, strict=True)]
                for t, result in self._render(live, share, text_s):
                    if isinstance(result, Exception):  # ends its own request only
                        t.cancel()
                        _send(t, result)
                        continue
                    t.rendered += 1
                    _send(t, result)
                    if t.rendered == len(t.jobs):
                        _send(t, None)
        except Exception as exc:  # the decode failed: every request in it ends
            for t in {t.id: t for t, _ in picked}.values():
                t.cancel()
                _send(t, exc)
        with self.wake:
            self._drop_finished()

    def _render(self, live, share, text_s):
        """(ticket, chunk or exception) for each row still wanted, as soon as it exists: one
        S3Gen pass for all of them where the engine batches S3Gen (CUDA), else group by group."""
        if self.engine.batch_s3gen and len(live) > 1:
            live = [(t, j, r) for t, j, r in live if not t.cancelled.is_set()]
            try:
                rows = ([j for _, j, _ in live], ([r for *_, r in live], share, text_s))
                chunks = render_jobs(self.engine, *rows)
            except Exception as exc:
                chunks = [exc] * len(live)
            yield from ((t, c) for (t, _, _), c in zip(live, chunks, strict=True))
            return
        for t, job, row in live:
            if t.cancelled.is_set():
                continue
            try:
                (chunk,) = render_jobs(self.engine, [job], ([row], share, text_s))
            except Exception as exc:
                chunk = exc
            yield t, chunk


def _send(t: Ticket, item) -> None:
    try:
        t.deliver(item)
    except Exception:  # a waiter that has gone away (its event loop closed) gets nothing
        pass
