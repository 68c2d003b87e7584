"""Loading helpers every family uses: one copy of the weights in memory.

Upstream `from_local` builds each model with random weights, copies a whole state dict into it
and keeps every state dict alive until it returns (~6.6 GB peak RSS for Turbo's ~3.7 GB on CPU).
The families build the same upstream classes from the same files, but S3Gen first (its file
freed right after) and T3 on the meta device, handed the file's tensors (`assign=True`), so no
weight exists twice. Key checks are never stricter than upstream's.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from pathlib import Path

from chatterbox_cli.runtime.atomic import atomic_write
from chatterbox_cli.runtime.errors import DiskFull

INT8_FORMAT = 2
"""Bump when the saved int8 state would no longer load into `int8_skeleton`."""


def assert_materialized(module) -> None:
    for name, tensor in (*module.named_parameters(), *module.named_buffers()):
        if tensor.is_meta:
            raise RuntimeError(f"{name} was not in the checkpoint (still on the meta device)")


def cache_dir() -> Path:
    """Our own cache (int8 weights): CHATTERBOX_CACHE_DIR, else $XDG_CACHE_HOME/chatterbox-cli."""
    if os.environ.get("CHATTERBOX_CACHE_DIR"):
        return Path(os.environ["CHATTERBOX_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chatterbox-cli"


def int8_cache_path(t3_file: Path) -> Path:
    """Keyed by the T3 file (real path, size, mtime), torch's version and our format."""
    import torch

    t3_file = Path(t3_file).resolve()
    st = t3_file.stat()
    key = f"{t3_file}|{st.st_size}|{st.st_mtime_ns}|{torch.__version__}|{INT8_FORMAT}"
    return cache_dir() / "int8" / f"t3-{hashlib.sha256(key.encode()).hexdigest()[:20]}.pt"


def t3_state(path: Path) -> dict:
    """A T3 file's tensors (upstream also accepts a training checkpoint's `model` entry)."""
    from safetensors.torch import load_file

    state = load_file(path)
    if "model" in state:
        state = state["model"][0]
    return state


def as_module_dtypes(module, state: dict) -> dict:
    """`assign=True` keeps a file tensor's dtype where copying would cast it to the module's:
    cast the few that differ, so assigning loads exactly what upstream's copy loads."""
    own = module.state_dict()
    for key, value in state.items():
        if key in own and value.dtype != own[key].dtype:
            state[key] = value.to(own[key].dtype)
    return state


def assign_t3(t3, state: dict, dropped: set[str]) -> None:
    """Hand `state`'s tensors to a meta-built T3: every key must land, except `dropped` ones,
    which the model no longer has (upstream loads T3 strictly, and so do we)."""
    missing, unexpected = t3.load_state_dict(as_module_dtypes(t3, state), strict=False, assign=True)
    if missing or set(unexpected) != dropped & set(state):
        raise RuntimeError(f"T3 checkpoint keys differ: missing {missing}, unexpected {unexpected}")
    state.clear()
    assert_materialized(t3)
    t3.eval()


def torch_load(path, **kwargs):
    """`torch.load(weights_only=True)` without torch's UserWarnings (a legacy pickle's
    "Detected pickle protocol" note would print above our one-line error)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.load(path, weights_only=True, **kwargs)


def read_state(path: Path) -> dict:
    """A weights file's tensors, memory-mapped: safetensors, or a torch pickle (Multilingual's
    `.pt` files), which is read with `weights_only=True` so it can't run code."""
    from safetensors.torch import load_file

    if Path(path).suffix == ".safetensors":
        return load_file(path)
    return torch_load(path, map_location="cpu", mmap=True)


def load_s3gen(path: Path, device: str, meanflow: bool, strict: bool):
    """S3Gen holding the file's own tensors (`assign=True`): the file is mapped, so a
    weight costs memory only once it is used. The speech tokenizer (~470 MB, only needed to
    prepare a voice from a clip) then stays on disk for built-in and cached voices."""
    from chatterbox.models.s3gen import S3Gen

    s3gen = S3Gen(meanflow=meanflow)
    state = as_module_dtypes(s3gen, read_state(path))
    s3gen.load_state_dict(state, strict=strict, assign=True)
    del state
    if device == "cpu":
        map_speech_tokenizer(s3gen, path)
    s3gen.to(device).eval()
    gc.collect()
    release_freed_memory()  # the random initial weights just replaced
    return s3gen


def map_speech_tokenizer(s3gen, path: Path) -> None:
    """Point S3Gen's speech tokenizer at a mapping of the weights file of its own. Preparing a
    voice from a clip pages its ~470 MB in; mapping it afresh afterwards
    (`release_speech_tokenizer`) drops those pages, so a clip voice costs no more memory for the
    rest of the run than a built-in one. The tensors are the file's, as before."""
    prefix = "tokenizer."
    state = {k[len(prefix) :]: v for k, v in read_state(path).items() if k.startswith(prefix)}
    if state:
        state = as_module_dtypes(s3gen.tokenizer, state)
        s3gen.tokenizer.load_state_dict(state, strict=False, assign=True)
        s3gen.weights_file = Path(path)


def release_speech_tokenizer(s3gen) -> None:
    """After a voice was prepared from a clip (see `map_speech_tokenizer`)."""
    path = getattr(s3gen, "weights_file", None)
    if path is None or not Path(path).is_file():
        return
    map_speech_tokenizer(s3gen, path)
    gc.collect()
    release_freed_memory()


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise, and they would count
    in RSS for the whole run); a no-op where there is no glibc."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def load_ve(path: Path, device: str):
    from chatterbox.models.voice_encoder import VoiceEncoder

    ve = VoiceEncoder()
    ve.load_state_dict(read_state(path))
    return ve.to(device).eval()


def load_conds(ckpt_dir: Path, device: str, conditionals=None):
    """The checkpoint's built-in voice (`conds.pt`), or None; `conditionals` is the family's
    upstream `Conditionals` class (Standard's by default)."""
    import torch
    from chatterbox.tts import Conditionals

    cls = conditionals or Conditionals
    path = Path(ckpt_dir) / "conds.pt"
    if not path.exists():
        return None
    map_location = torch.device("cpu") if device in ("cpu", "mps") else None
    return cls.load(path, map_location=map_location).to(device)


def save_atomic(state, path: Path) -> None:
    """Best effort: a read-only cache only costs the next run the quantization again."""
    import torch

    with contextlib.suppress(OSError, RuntimeError, DiskFull), atomic_write(path) as fh:
        torch.save(state, fh)
