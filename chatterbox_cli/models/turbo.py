"""Turbo (`ChatterboxTurboTTS`): GPT-2 medium T3, English, meanflow S3Gen (2 steps).

Our decode loops for it are in `t3/decode.py` (tests/test_parity.py proves them equal to
`T3.inference_turbo`); it is the one family with the per-voice prefix KV cache, int8 and the
static-cache fast decode, because its 375-token voice prompt is what they pay off on.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from chatterbox_cli.models.base import Family
from chatterbox_cli.models.loading import (
    assert_materialized,
    assign_t3,
    int8_cache_path,
    load_conds,
    load_s3gen,
    load_ve,
    save_atomic,
    t3_state,
)
from chatterbox_cli.models.sampling import SamplingParams

TEXT_VOCAB = 50276
T3_FILE = "t3_turbo_v1.safetensors"
S3GEN_FILE = "s3gen_meanflow.safetensors"


GPT2_SMALL = {"n_embd": 768, "hidden_size": 768, "n_head": 12, "n_layer": 12}
"""GPT-2 small's public shape: how upstream main's `GPT2_small` entry differs from
`GPT2_medium` (checked against resemble-ai/chatterbox main, 2026)."""


def known_backbone(name: str) -> str:
    """`name` in upstream's backbone table, which T3 reads when it is built. 0.1.7's table has
    no `GPT2_small` (upstream main adds it, for Nano): we add the same entry, in memory and
    once (the medium entry with GPT-2 small's shape), never touching the installed files."""
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS

    if name == "GPT2_small":
        LLAMA_CONFIGS.setdefault(name, {**LLAMA_CONFIGS["GPT2_medium"], **GPT2_SMALL})
    return name


def turbo_config(backbone: str = "GPT2_medium"):
    """Upstream `from_local`'s Turbo hyper-parameters (Nano: the same on GPT-2 small)."""
    from chatterbox.tts_turbo import T3Config

    hp = T3Config(text_tokens_dict_size=TEXT_VOCAB)
    hp.llama_config_name = known_backbone(backbone)
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    return hp


def _t3_skeleton(backbone: str):
    """T3 on the meta device, without GPT-2's `wte` (upstream drops it) and `text_head` (only
    training uses it)."""
    import torch
    from chatterbox.tts_turbo import T3

    with torch.device("meta"):
        t3 = T3(turbo_config(backbone))
    del t3.tfmr.wte, t3.text_head
    return t3


def load_t3(ckpt_dir: Path, quantize: str = "none", t3_file: str = T3_FILE, backbone="GPT2_medium"):
    """T3 with the checkpoint's weights; `int8` from our cache, or quantized (and cached)."""
    import torch

    from chatterbox_cli.models.quantize import int8_skeleton, quantize_t3

    t3_file = Path(ckpt_dir) / t3_file
    cached = int8_cache_path(t3_file) if quantize == "int8" else None
    if cached is not None and cached.is_file():
        t3 = _t3_skeleton(backbone)
        int8_skeleton(t3)
        try:
            t3.load_state_dict(torch.load(cached, weights_only=True), strict=True, assign=True)
            assert_materialized(t3)
            return t3.eval()
        except Exception as exc:  # stale or damaged: quantize again and replace it
            warnings.warn(f"ignoring int8 cache {cached}: {exc}", stacklevel=2)
    t3 = _t3_skeleton(backbone)
    assign_t3(t3, t3_state(t3_file), {"tfmr.wte.weight", "text_head.weight"})
    if cached is not None:
        quantize_t3(t3)
        save_atomic(t3.state_dict(), cached)
    return t3


class Turbo(Family):
    name = "turbo"
    hub_repo = "ResembleAI/chatterbox-turbo"
    size = "350M"
    summary = "English, fast: one-pass S3Gen, paralinguistic tags ([laugh], [cough])"
    t3_file = T3_FILE
    backbone = "GPT2_medium"
    """Upstream's name for the T3 backbone in its config table."""
    weights = ("ve.safetensors", T3_FILE, S3GEN_FILE)
    tokenizer_files = ("tokenizer.json", "vocab.json")
    defaults = SamplingParams()
    knobs = frozenset({"temperature", "top_p", "top_k", "repetition_penalty"})
    cfm_steps = 2
    max_cfm_steps = 2
    vc_s3gen = S3GEN_FILE
    meanflow = True
    tail_tokens = 3
    prompt_tokens = 375
    voice_family = "turbo"
    prefix_cache = True
    int8 = True
    fast_decode = True
    upstream_t3 = "inference_turbo"

    def load(self, ckpt_dir: Path, device: str, quantize: str = "none"):
        import gc

        from chatterbox.tts_turbo import ChatterboxTurboTTS
        from transformers import AutoTokenizer

        ckpt_dir = Path(ckpt_dir)
        s3gen = load_s3gen(ckpt_dir / S3GEN_FILE, device, meanflow=True, strict=True)
        ve = load_ve(ckpt_dir / "ve.safetensors", device)
        t3 = load_t3(ckpt_dir, quantize, self.t3_file, self.backbone).to(device)
        gc.collect()
        tokenizer = AutoTokenizer.from_pretrained(ckpt_dir)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if len(tokenizer) != TEXT_VOCAB:
            warnings.warn(
                f"tokenizer has {len(tokenizer)} entries; {self.name}'s has {TEXT_VOCAB}",
                stacklevel=2,
            )
        conds = load_conds(ckpt_dir, device)
        return ChatterboxTurboTTS(t3, s3gen, ve, tokenizer, device, conds=conds)

    def text_tokens(self, tts, text: str, language: str = "en"):
        from chatterbox.tts_turbo import punc_norm

        ids = tts.tokenizer(punc_norm(text), return_tensors="pt", padding=True, truncation=True)
        return ids.input_ids.to(tts.device)

    def prepare_reference(self, tts, path: Path):
        tts.prepare_conditionals(str(path))
        return tts.conds

    def decode(self, t3, row, run):
        from chatterbox_cli.models.t3.decode import decode

        return decode(t3, row, run)

    def decode_batch(self, t3, rows, run):
        from chatterbox_cli.models.t3.decode import decode_batch

        return decode_batch(t3, rows, run)

    def generate(self, tts, text: str, params: SamplingParams, language: str = "en"):
        return tts.generate(
            text,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            repetition_penalty=params.repetition_penalty,
        )

    def upstream_cap(self, cap: int) -> dict:
        return {"max_gen_len": cap - 1}  # upstream samples once before its loop


TURBO = Turbo()
