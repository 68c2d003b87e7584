"""The one seed scheme: every group of a seeded text gets its own stable seed, and every retry
of a flagged group a seed derived from its text's seed, group and attempt, so the same --seed
gives the same file from `say`, `batch` and the server."""

from __future__ import annotations

MOD = 2**63


def group_seed(seed: int | None, index: int) -> int | None:
    """Group `index`'s seed when rows are synthesized apart (batches, the server)."""
    return None if seed is None else (seed * 1_000_003 + index) % MOD


def retry_seed(seed: int | None, index: int, attempt: int) -> int:
    """The seed of group `index`'s `attempt`-th retry; an unseeded text's retries are seeded
    too (from 0), so a retry can be told from the try before it."""
    base = group_seed(0 if seed is None else seed, index)
    return (base * 7_919 + attempt * 104_729 + 1) % MOD
