"""The one guard-and-retry path (files and batches): a group the guard flags is synthesized
again with the seed scheme's retry seeds, up to `retries` times, and the best attempt is kept
(the fewest flags, then the lowest error rate when listened to; the first of equals)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from chatterbox_cli.synth.batched import Job
from chatterbox_cli.synth.chunk import Synthesized
from chatterbox_cli.synth.judge import Judge
from chatterbox_cli.synth.seeds import retry_seed


@dataclass
class Flagged:
    """A group under retry: what to synthesize again, its best chunk so far and its flags."""

    job: Job
    seed: int | None
    """The seed of the text the group belongs to (retry seeds derive from it)."""
    best: Synthesized
    found: list[str]
    owner: Any = None
    """Whom the group belongs to (a batch item), for the caller."""
    tries: int = 0


Redo = Callable[[list[Job]], Iterable[Synthesized | Exception]]
"""Synthesizes jobs again: a chunk, or the exception that ended it, per job in order."""


def retry_flagged(
    flagged: list[Flagged], redo: Redo, retries: int, judge: Judge
) -> Iterator[Flagged]:
    """Each group once it is settled: clean, out of retries, or failed (its best attempt so far
    kept). Attempt k of every group still flagged runs together, so a batch job retries in
    batches; each attempt's seed is its own, so the order changes nothing."""
    queue = list(flagged)
    for attempt in range(1, retries + 1):
        jobs = [replace(f.job, seed=retry_seed(f.seed, f.job.group.index, attempt)) for f in queue]
        later = []
        for f, chunk in zip(queue, redo(jobs) if jobs else (), strict=True):
            if isinstance(chunk, Exception):
                yield f
                continue
            f.tries = attempt
            found = judge.flags(chunk)
            if judge.rank(chunk, found) < judge.rank(f.best, f.found):
                f.best, f.found = chunk, found
            if f.found and attempt < retries:
                later.append(f)
            else:
                yield f
        queue = later
    yield from queue
