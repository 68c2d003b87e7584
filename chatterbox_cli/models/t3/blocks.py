"""Flash's T3 as we drive it: upstream `ChatterboxFlashT3.generate()` itself (its block loop,
schedule, guidance and engines), watched block by block.

`generate()` returns only when every block is done. To stream by block without touching its
loop we run it in a worker thread in lockstep with the consumer (`lockstep`): the worker goes on
only while the consumer waits for the next block, so the order of every RNG draw is that of one
thread, and a seed means what it means upstream. A block is seen through the one call the loop
makes per forward, `_embed_speech_tokens(xt[:, start:end])`: its argument is a view of the
loop's token buffer (its offset is the block's start), so when a call starts a later block the
view of the earlier one holds its final tokens. A group of one block is all in the return value.

Batches go through `generate()`'s own cross-text path (rows of any text, voice and cap), on
the torch engine with its ragged-cache mask fixed (`ragged.py`). Its rows draw from the one
global RNG in turn; `row_rngs` gives each row a stream of its own (its seed's), so a row
decodes the same in any batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chatterbox_cli.models.t3.request import DecodeStats, Decoding, Row

STOP = 6562
"""T3's stop-speech token (`hp.stop_speech_token`)."""


class Ended(Exception):
    """Raised inside the worker: the consumer stopped listening, or the decode was cancelled."""


def lockstep(work: Callable[[Callable[[Any], None], threading.Event], Any]) -> Iterator:
    """`work(emit, halt)` run in a thread as a generator: each `emit(x)` yields x and holds the
    worker until the next item is asked for. Closing the generator ends the worker (`emit`
    raises `Ended` in it); so does anything raised in the consumer meanwhile (Ctrl-C): `halt`
    is set, which `work` polls. The generator returns what `work` returned."""
    to_main: queue.Queue = queue.Queue(1)
    to_worker: queue.Queue = queue.Queue()  # unbounded: a word to the worker never blocks
    halt = threading.Event()

    def emit(item) -> None:
        to_main.put(("item", item))
        if to_worker.get() == "stop":
            raise Ended

    def run() -> None:
        if to_worker.get() == "stop":
            return
        try:
            to_main.put(("done", work(emit, halt)))
        except Ended:
            to_main.put(("ended", None))
        except BaseException as exc:  # handed to the consumer, raised there
            to_main.put(("error", exc))

    thread = threading.Thread(target=run, name="flash-t3", daemon=True)
    thread.start()
    try:
        while True:
            to_worker.put("go")
            kind, value = to_main.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return value
    finally:
        halt.set()
        to_worker.put("stop")  # read by a worker waiting in `emit` (or to start); else left
        while thread.is_alive():  # answer the worker until it is gone
            try:
                kind, _ = to_main.get(timeout=0.05)
            except queue.Empty:
                continue
            if kind == "item":
                to_worker.put("stop")
        thread.join()


@dataclass
class Watch:
    """What the hook saw of `generate()`'s token buffer (`forward_rows` x `width` tokens, blocks
    of at most `block`): where the current block starts and how many block forwards ran;
    `on_block(tokens)` gets each finished block's first `rows` rows."""

    rows: int
    forward_rows: int
    width: int
    block: int
    on_block: Callable[[Any], None]
    cancelled: Callable[[], bool] = lambda: False
    buffer: Any = None
    """The current block's view of the token buffer."""
    start: int = 0
    forwards: int = 0
    blocks: int = 0
    first_s: float | None = None
    t0: float = field(default_factory=time.perf_counter)

    def see(self, view) -> None:
        if (
            view.dim() != 2
            or view.size(0) != self.forward_rows
            or view.stride(0) != self.width
            or view.size(1) > self.block
        ):
            return  # not a slice of the token buffer (the prior's or the prefix's own tokens)
        if self.first_s is None:
            self.first_s = time.perf_counter() - self.t0
        if self.cancelled():
            raise Ended
        start = view.storage_offset()  # row 0's: `xt[:, start:end]`
        self.forwards += 1
        if start > self.start:
            done = self.buffer[: self.rows].clone()  # the last view of that block: final now
            self.start, self.blocks = start, self.blocks + 1
            self.on_block(done)
        self.buffer = view


@contextmanager
def watching(t3, watch: Watch):
    """`t3._embed_speech_tokens` reports to `watch` for the duration (an instance attribute
    over the class's method, removed after)."""
    method = type(t3)._embed_speech_tokens

    def embed(tokens):
        watch.see(tokens)
        return method(t3, tokens)

    t3._embed_speech_tokens = embed
    try:
        yield watch
    finally:
        del t3._embed_speech_tokens


def upstream_kwargs(params, device: str) -> dict:
    """Our knobs as the package's `generate()`s name them (T3's and `ChatterboxFlashTTS`'s);
    the rest are its defaults. CUDA graphs
    where the engine can use them (FlashInfer on CUDA; the torch engine ignores them)."""
    return {
        "num_steps": params.steps,
        "temperature": params.temperature,
        "cfg_scale": params.cfg_weight,
        "use_cuda_graph": str(device).startswith("cuda"),
    }


def budget(row: Row) -> int:
    """Upstream's token budget for the text (`max(6 * text tokens, 300)`), under our cap."""
    from chatterbox_flash.tts import _speech_len_for_text_tokens

    return min(_speech_len_for_text_tokens(int(row.text_tokens.size(1))), row.max_new_tokens)


def flash_cond(t3, cond):
    """The conditioning in T3's own dtype (voices are kept in float32; Flash runs in bf16 on
    CUDA): a cast copy, every float field, so the shared voice is never changed."""
    import copy

    dtype = next(t3.parameters()).dtype
    fields = [v for v in vars(cond).values() if hasattr(v, "is_floating_point")]
    if all(v.dtype == dtype for v in fields if v.is_floating_point()):
        return cond
    return copy.copy(cond).to(dtype=dtype)


def decode(t3, row: Row, run: Decoding | None = None) -> Iterator:
    """One row, exactly `generate()` with `batch_size=1` (the global RNG, as upstream): its
    tokens, block by block, as each block is final; the stop token ends it."""
    import torch

    run = run or Decoding()
    stats = run.stats
    t3.set_block_size(row.params.block_size)
    total = budget(row)

    def work(emit, halt):
        seed = _seed_of(row.generator)
        if seed is not None:
            torch.manual_seed(seed)
        watch = Watch(
            1,
            forward_rows(row.params),
            total,
            row.params.block_size,
            lambda block: emit(block[0]),
            lambda: halt.is_set() or _cancelled(row, run),
        )
        with watching(t3, watch), run.amp():
            out = t3.generate(
                t3_cond=flash_cond(t3, row.t3_cond),
                text_tokens=row.text_tokens,
                text_token_lens=torch.tensor([row.text_tokens.size(1)], device=t3.device),
                total_speech_len=total,
                batch_size=1,
                **upstream_kwargs(row.params, t3.device),
            )
        _account(stats, watch, out.size(1) < total)
        return out[0, watch.start :]

    blocks, last = lockstep(work), False
    try:
        while not last:
            try:
                block = next(blocks)
            except StopIteration as end:  # the last block (None: cancelled)
                block, last = end.value, True
            if block is not None:
                yield from (block[i : i + 1] for i in range(block.numel()))
    finally:
        blocks.close()


def decode_batch(t3, rows: list[Row], run: Decoding | None = None) -> list[list[int]]:
    """Rows decoded together through `generate()`'s cross-text path, one call per set of
    knobs (the loop takes one); each row's tokens up to its stop token."""
    run = run or Decoding()
    out: list[list[int]] = [[] for _ in rows]
    by_knobs: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        by_knobs.setdefault(_knob_key(row.params), []).append(i)
    for members in by_knobs.values():
        for i, tokens in zip(
            members, _decode_together(t3, [rows[i] for i in members], run), strict=True
        ):
            out[i] = tokens
    return out


def _decode_together(t3, rows: list[Row], run: Decoding) -> list[list[int]]:
    """Each row's budget is padded to whole blocks: upstream sizes every row's last block from
    the longest row's budget, so a shorter row's last block would otherwise be wider in a
    batch than alone. Its tokens are cut back to its budget after."""
    import torch

    from chatterbox_cli.models.t3.ragged import install

    size = rows[0].params.block_size
    t3.set_block_size(size)
    totals = [budget(r) for r in rows]
    padded = [-(-total // size) * size for total in totals]
    seen: list = []
    fwd = len(rows) * forward_rows(rows[0].params)
    watch = Watch(len(rows), fwd, max(padded), size, seen.append,
                  lambda: _all_cancelled(rows, run))  # fmt: skip
    install(t3, fwd)
    try:
        with watching(t3, watch), row_rngs(rows, max(padded), t3.device), run.amp():
            out = t3.generate(
                t3_cond=[flash_cond(t3, r.t3_cond) for r in rows],
                text_tokens=[r.text_tokens for r in rows],
                total_speech_len=padded,
                **upstream_kwargs(rows[0].params, t3.device),
            )
        stopped = True
    except Ended:
        out = torch.cat(seen, dim=1) if seen else torch.empty(len(rows), 0, dtype=torch.long)
        stopped = False
    tokens = [until_stop(out[i, :total].tolist()) for i, total in enumerate(totals)]
    ended = all(len(t) < n for t, n in zip(tokens, totals, strict=True))
    _account(run.stats, watch, stopped and ended)
    return tokens


def forward_rows(params) -> int:
    """Model rows a row takes: two with guidance (the null branch), else one."""
    return 2 if params.cfg_weight > 0 else 1


def until_stop(tokens: list[int]) -> list[int]:
    """Up to T3's first stop token (the package's `_trim_to_eos`, before its codec filter)."""
    return tokens[: tokens.index(STOP)] if STOP in tokens else tokens


def _knob_key(params) -> tuple:
    return (params.steps, params.block_size, params.temperature, params.cfg_weight)


def _seed_of(generator) -> int | None:
    import torch

    if generator is None:
        return None
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))


def _cancelled(row: Row, run: Decoding) -> bool:
    return row.ended() or (run.cancel is not None and run.cancel.is_set())


def _all_cancelled(rows: list[Row], run: Decoding) -> bool:
    return (run.cancel is not None and run.cancel.is_set()) or all(r.ended() for r in rows)


def _account(stats: DecodeStats, watch: Watch, stopped: bool) -> None:
    total = time.perf_counter() - watch.t0
    first = watch.first_s if watch.first_s is not None else total
    stats.prefill_s += first
    stats.decode_s += total - first
    stats.steps += watch.forwards - watch.blocks  # each block but the last: one forward to commit
    stats.blocks += watch.blocks + 1
    stats.stopped = stopped


ROWS = threading.local()
"""The batch's per-row RNG states while `row_rngs` is active in this thread."""


@contextmanager
def row_rngs(rows: list[Row], width: int, device):
    """Each row samples from an RNG of its own: its generator's seed, else one drawn from the
    global RNG, in row order. Upstream's per-row step (`_pmi_count_early_step_unmask`, called
    with row `bi`'s block, a view at `bi * width + start` of the `width`-token buffer) is wrapped
    once to swap that row's state in and out."""
    import torch

    _wrap_step()
    cuda = str(device).startswith("cuda")
    get_state = torch.cuda.get_rng_state if cuda else torch.get_rng_state
    set_state = torch.cuda.set_rng_state if cuda else torch.set_rng_state
    seeds = [_seed_of(r.generator) for r in rows]
    seeds = [s if s is not None else int(torch.randint(0, 2**62, (1,))) for s in seeds]
    states = []
    with torch.random.fork_rng(devices=[torch.device(device)] if cuda else []):
        for seed in seeds:
            torch.manual_seed(seed)
            states.append(get_state())
        ROWS.states, ROWS.width, ROWS.get, ROWS.set = states, width, get_state, set_state
        try:
            yield
        finally:
            del ROWS.states


def _wrap_step() -> None:
    from chatterbox_flash import model

    step = model._pmi_count_early_step_unmask
    if getattr(step, "per_row", False):
        return

    def per_row(blk_logits_2d, blk_toks_1d, **kwargs):
        states = getattr(ROWS, "states", None)
        if states is None:
            return step(blk_logits_2d, blk_toks_1d, **kwargs)
        row = blk_toks_1d.storage_offset() // ROWS.width
        ROWS.set(states[row])
        try:
            return step(blk_logits_2d, blk_toks_1d, **kwargs)
        finally:
            states[row] = ROWS.get()

    per_row.per_row = True
    model._pmi_count_early_step_unmask = per_row
