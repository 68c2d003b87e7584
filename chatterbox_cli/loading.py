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

import gc
import warnings
from pathlib import Path

TEXT_VOCAB = 50276


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


def load_turbo(ckpt_dir: Path, device: str):
    """A `ChatterboxTurboTTS` from a `from_local`-layout directory, lean on memory."""
    import torch
    from chatterbox.tts_turbo import T3, ChatterboxTurboTTS, Conditionals, S3Gen, VoiceEncoder
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

    with torch.device("meta"):
        t3 = T3(turbo_config())
    state = load_file(ckpt_dir / "t3_turbo_v1.safetensors")
    if "model" in state:
        state = state["model"][0]
    t3.load_state_dict(state, strict=True, assign=True)
    del state
    del t3.tfmr.wte, t3.text_head
    _assert_materialized(t3)
    t3.to(device).eval()
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
