"""Load a Turbo checkpoint with one copy of the weights in memory.

Upstream `ChatterboxTurboTTS.from_local` builds each model with random weights, copies a whole
state dict into it and keeps every state dict alive until it returns: ~6.6 GB peak RSS for a
~3.7 GB model on CPU. This builds the same upstream classes from the same files with the same
strict key check, but in an order where no weight exists twice: S3Gen first (its file freed
right after), then T3 built on the meta device and handed the file's tensors (`assign=True`).
T3's GPT-2 token embedding `wte` is dropped as upstream drops it, and so is `text_head`, which
only training uses (Turbo's inference reads `speech_head`).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import tempfile
import warnings
from pathlib import Path

TEXT_VOCAB = 50276
T3_FILE = "t3_turbo_v1.safetensors"
INT8_FORMAT = 2
"""Bump when the saved int8 state would no longer load into `int8_skeleton`."""


def turbo_config():
    """Upstream `from_local`'s Turbo hyper-parameters."""
    from chatterbox.tts_turbo import T3Config

    hp = T3Config(text_tokens_dict_size=TEXT_VOCAB)
    hp.llama_config_name = "GPT2_medium"
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    return hp


def _assert_materialized(module) -> None:
    for name, tensor in (*module.named_parameters(), *module.named_buffers()):
        if tensor.is_meta:
            raise RuntimeError(f"{name} was not in the checkpoint (still on the meta device)")


def cache_dir() -> Path:
    """Our own cache (int8 weights): CHATTERBOX_CACHE_DIR, else $XDG_CACHE_HOME/chatterbox-cli."""
    if os.environ.get("CHATTERBOX_CACHE_DIR"):
        return Path(os.environ["CHATTERBOX_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chatterbox-cli"


def int8_cache_path(ckpt_dir: Path) -> Path:
    """Keyed by the T3 file (real path, size, mtime), torch's version and our format."""
    import torch

    t3_file = (Path(ckpt_dir) / T3_FILE).resolve()
    st = t3_file.stat()
    key = f"{t3_file}|{st.st_size}|{st.st_mtime_ns}|{torch.__version__}|{INT8_FORMAT}"
    return cache_dir() / "int8" / f"t3-{hashlib.sha256(key.encode()).hexdigest()[:20]}.pt"


def _t3_skeleton():
    import torch
    from chatterbox.tts_turbo import T3

    with torch.device("meta"):
        t3 = T3(turbo_config())
    del t3.tfmr.wte, t3.text_head
    return t3


def load_t3(ckpt_dir: Path, quantize: str = "none"):
    """T3 with the checkpoint's weights; `int8` from our cache, or quantized (and cached)."""
    import torch
    from safetensors.torch import load_file

    from chatterbox_cli.quantize import int8_skeleton, quantize_t3

    cached = int8_cache_path(ckpt_dir) if quantize == "int8" else None
    if cached is not None and cached.is_file():
        t3 = _t3_skeleton()
        int8_skeleton(t3)
        try:
            t3.load_state_dict(torch.load(cached, weights_only=True), strict=True, assign=True)
            _assert_materialized(t3)
            return t3.eval()
        except Exception as exc:  # stale or damaged: quantize again and replace it
            warnings.warn(f"ignoring int8 cache {cached}: {exc}", stacklevel=2)
    t3 = _t3_skeleton()
    state = load_file(Path(ckpt_dir) / T3_FILE)
    if "model" in state:
        state = state["model"][0]
    unused = {"tfmr.wte.weight", "text_head.weight"}
    missing, unexpected = t3.load_state_dict(state, strict=False, assign=True)
    if missing or set(unexpected) != unused & set(state):
        raise RuntimeError(f"T3 checkpoint keys differ: missing {missing}, unexpected {unexpected}")
    del state
    _assert_materialized(t3)
    t3.eval()
    if cached is not None:
        quantize_t3(t3)
        _save_atomic(t3.state_dict(), cached)
    return t3


def _save_atomic(state, path: Path) -> None:
    """Best effort: a read-only cache only costs the next run the quantization again."""
    import torch

    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".chatterbox-", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(state, fh)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def load_turbo(ckpt_dir: Path, device: str, quantize: str = "none"):
    """A `ChatterboxTurboTTS` from a `from_local`-layout directory, lean on memory."""
    import torch
    from chatterbox.tts_turbo import ChatterboxTurboTTS, Conditionals, S3Gen, VoiceEncoder
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    ckpt_dir = Path(ckpt_dir)
    s3gen = S3Gen(meanflow=True)
    s3gen.load_state_dict(load_file(ckpt_dir / "s3gen_meanflow.safetensors"), strict=True)
    s3gen.to(device).eval()
    gc.collect()

    ve = VoiceEncoder()
    ve.load_state_dict(load_file(ckpt_dir / "ve.safetensors"))
    ve.to(device).eval()

    t3 = load_t3(ckpt_dir, quantize).to(device)
    gc.collect()

    tokenizer = AutoTokenizer.from_pretrained(ckpt_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if len(tokenizer) != TEXT_VOCAB:
        warnings.warn(
            f"tokenizer has {len(tokenizer)} entries; Turbo's has {TEXT_VOCAB}", stacklevel=2
        )
    conds = None
    if (ckpt_dir / "conds.pt").exists():
        map_location = torch.device("cpu") if device in ("cpu", "mps") else None
        conds = Conditionals.load(ckpt_dir / "conds.pt", map_location=map_location).to(device)
    return ChatterboxTurboTTS(t3, s3gen, ve, tokenizer, device, conds=conds)
