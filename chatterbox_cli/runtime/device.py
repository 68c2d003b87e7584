"""How and where the model runs: device choice, threads, dtype, int8, quiet upstream calls.

Kept apart from the engine so every layer (decode loops, streaming, bench, CLI checks) can use
these without importing the engine; heavy imports stay inside functions.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from chatterbox_cli.runtime.errors import BadInput, Spell, as_field

DEVICES = ("auto", "cpu", "cuda", "mps")


def debug_enabled() -> bool:
    return os.environ.get("CHATTERBOX_DEBUG", "") not in ("", "0")


class _Sink(io.TextIOBase):
    """Discards what is written (a long-running server must not collect tqdm bars)."""

    def write(self, text: str) -> int:
        return len(text)


class _Quiet:
    """Shared by every thread (the server renders and watermarks in several): the first to
    enter swaps stdout/stderr and the warning filters, the last to leave puts them back, so
    overlapping calls can never leave them swapped or restore them too early."""

    lock = threading.Lock()
    depth = 0
    saved: tuple = ()


@contextlib.contextmanager
def upstream_quiet():
    """Upstream prints notices on stdout (our data channel) and tqdm bars on stderr (where our
    own progress goes): swallow both unless CHATTERBOX_DEBUG is set."""
    if debug_enabled():
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    with _Quiet.lock:
        if _Quiet.depth == 0:
            _Quiet.saved = (sys.stdout, sys.stderr, warnings.filters[:])
            sys.stdout = sys.stderr = _Sink()
            warnings.simplefilter("ignore")
        _Quiet.depth += 1
    try:
        yield
    finally:
        with _Quiet.lock:
            _Quiet.depth -= 1
            if _Quiet.depth == 0:
                sys.stdout, sys.stderr, warnings.filters[:] = _Quiet.saved


@contextlib.contextmanager
def dropping_stderr_lines(markers: tuple[bytes, ...]):
    """Pass everything written to file descriptor 2 through, except lines holding a marker.
    Ray's C++ side writes there directly, so filtering Python's `sys.stderr` would not do."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        while chunk := os.read(read_end, 65536):
            if any(m in chunk for m in markers):
                lines = chunk.split(b"\n")
                chunk = b"\n".join(x for x in lines if not any(m in x for m in markers))
            os.write(saved, chunk)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump drains and stops
        thread.join(timeout=5)
        os.close(read_end)
        os.close(saved)


def quiet_upstream_logs() -> None:
    """Upstream's `logging` warnings (the alignment analyzer's forced stops and repeated tokens,
    missing optional text packages, which we report ourselves) unless CHATTERBOX_DEBUG is set."""
    if not debug_enabled():
        logging.getLogger("chatterbox").setLevel(logging.ERROR)


def check_device_name(name: str | None) -> str:
    name = (name or "auto").lower()
    if name not in DEVICES:
        raise BadInput(f"unknown device {name!r}; use one of: {', '.join(DEVICES)}")
    return name


def resolve_device(name: str = "auto", spell: Spell = as_field) -> str:
    import torch

    name = check_device_name(name)
    device = spell("device")
    has_mps = getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput(f"{device} cuda: no CUDA GPU is visible to torch; use {device} cpu")
    if name == "mps" and not has_mps:
        raise BadInput(f"{device} mps: Apple MPS is not available here; use {device} cpu")
    return name


def configure_device(device: str) -> None:
    import torch

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def sync(device) -> None:
    """Wait for queued GPU work so wall-clock stage times are honest."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


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
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def seeded(seed: int | None, device: str = "cpu"):
    """Draws inside come from `seed` as after `seed_everything(seed)`; afterwards every RNG of
    the process is as it was, so one request's seed never steers another's draws (the server
    renders many tenants' rows in one process). None: no seeding, nothing forked."""
    if seed is None:
        yield
        return
    import numpy as np
    import torch

    kind = torch.device(device).type
    devices = [] if kind == "cpu" else [torch.device(device)]
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices, device_type=kind):
            seed_everything(seed)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


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
    batch_s3gen: bool | None = None
    """Flow and HiFiGAN over a batch's groups at once; None: on CUDA only (on 2 CPU cores it
    was no faster than group by group, measured)."""

    def check_flags(self, spell: Spell = as_field) -> Runtime:
        """What needs no device (nor torch): values out of range or unknown."""
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise BadInput(f"{spell('threads')} must be between 1 and 1024")
        if self.quantize not in QUANTIZE:
            raise BadInput(f"{spell('quantize')} must be one of: {', '.join(QUANTIZE)}")
        if self.dtype.lower() not in DTYPES:
            raise BadInput(f"{spell('dtype')} must be one of: {', '.join(DTYPES)}")
        return self

    def check(self, device: str, spell: Spell = as_field) -> Runtime:
        """Validate against the resolved device; `auto` dtype becomes a concrete one."""
        import torch

        self.check_flags(spell)
        quantize, dtype_, device_ = spell("quantize"), spell("dtype"), spell("device")
        if self.quantize == "int8" and device != "cpu":
            raise BadInput(f"{quantize} int8 is for CPU; on a GPU use {dtype_} bfloat16")
        dtype = self.dtype.lower()
        if dtype == "auto":
            bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
            dtype = "bfloat16" if bf16 else "float32"
        if dtype == "float16" and device != "cuda":
            raise BadInput(f"{dtype_} float16 needs {device_} cuda; use bfloat16 or float32")
        if dtype == "bfloat16" and device == "mps":
            raise BadInput(f"{dtype_} bfloat16 is not supported on mps; use float32")
        batch_s3gen = device == "cuda" if self.batch_s3gen is None else self.batch_s3gen
        return Runtime(
            self.threads, self.quantize, dtype, self.fast_decode, self.overlap, batch_s3gen
        )

    def apply(self) -> None:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)


def release_memory() -> float:
    """Give freed heap memory back to the OS (glibc's `malloc_trim`); seconds it took.

    A long-running server frees tensors of ever-different shapes from several threads and
    glibc keeps those pages (measured in a server process after 240 short requests: trimming
    gave back 400 MB). Elsewhere (macOS, musl) there is nothing to call and this does
    nothing."""
    import ctypes
    import ctypes.util
    import time

    t0 = time.perf_counter()
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is not None:
        trim(0)
    return time.perf_counter() - t0
