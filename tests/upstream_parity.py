"""Our Turbo-architecture pipeline (Turbo, Nano) against upstream `ChatterboxTurboTTS.generate()`
on the same model, seed and cap: the speech tokens and the waveform must be identical."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.synth.request import RenderOptions
from chatterbox_cli.text.segment import TextGroup

STOP = 6562
"""Upstream T3's stop-speech token."""
STOP_BIAS = 4.0
"""Added to the stop token's logit bias: the random Turbo and Nano checkpoints then stop after
28 and 5 tokens for the parity tests' text and seed (measured)."""
FIRST_STOP_BIAS = 8.0
"""So high that the first sample is already the stop token, which upstream does not honour
(it checks from the second sample on): ours must go on as it does."""


PARAMS = {
    "defaults": SamplingParams(),
    "no-temperature-no-penalty": SamplingParams(
        temperature=1.0, top_p=0.9, top_k=50, repetition_penalty=1.0
    ),
}
"""Sampling the parity tests run with (`pytest.mark.parametrize(..., ids=list(PARAMS))`)."""


class NoWatermark:
    """Test-only: lets us compare upstream's waveform before its watermark."""

    def apply_watermark(self, wav, sample_rate):
        return wav


@contextlib.contextmanager
def stop_bias(t3, bias: float):
    """Random weights never emit the stop token; raising its bias in the speech head makes T3
    stop on its own, so the stop branch of both loops is compared. Restored exactly after."""
    saved = t3.speech_head.bias[STOP].item()
    with torch.no_grad():
        t3.speech_head.bias[STOP] += bias
    try:
        yield
    finally:
        with torch.no_grad():
            t3.speech_head.bias[STOP] = saved


def assert_equals_upstream(engine, monkeypatch, params, cap=12, seed=1234, text=None):
    """Run upstream's `generate()` (its T3 capped at `cap` samples) and ours; assert equal
    tokens, stop and samples. Returns (speech tokens, whether T3 stopped on its own)."""
    tts = engine.tts
    monkeypatch.setattr(engine, "prefix_cache", False)  # upstream recomputes it per call
    monkeypatch.setattr(engine, "overlap", False)  # upstream's RNG order: T3, S3Gen, T3, ...
    text = text or "hello there: this is a parity check… with “quotes”"
    captured = {}
    upstream_t3 = tts.t3.inference_turbo

    def capped(*args, **kwargs):
        kwargs["max_gen_len"] = cap - 1  # upstream samples once before its loop
        captured["tokens"] = upstream_t3(*args, **kwargs)
        return captured["tokens"]

    monkeypatch.setattr(tts.t3, "inference_turbo", capped)
    monkeypatch.setattr(tts, "watermarker", NoWatermark())
    monkeypatch.setattr(tts, "conds", engine.builtin_voice)
    torch.manual_seed(seed)
    upstream_wav = tts.generate(
        text,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,
        repetition_penalty=params.repetition_penalty,
    )[0].numpy()
    raw = captured["tokens"][0]  # upstream drops a final stop token
    upstream_tokens = raw[raw < 6561].tolist()
    upstream_stopped = len(raw) < cap
    (chunk,) = engine.synthesize(
        [TextGroup(0, text, 0)], engine.builtin_voice, RenderOptions(params, cap, seed)
    )
    assert chunk.speech_tokens == upstream_tokens
    assert chunk.stopped == upstream_stopped
    assert chunk.audio.shape == upstream_wav.shape
    np.testing.assert_array_equal(chunk.audio, upstream_wav)
    return upstream_tokens, upstream_stopped


@contextlib.contextmanager
def stop_logit(t3, added: float):
    """`stop_bias` for a head without a bias (the Llama T3s): a hook adds `added` to the stop
    token's logit wherever the head is called, in upstream's loop and ours alike."""

    def raise_stop(module, args, logits):
        logits = logits.clone()
        logits[..., STOP] += added
        return logits

    handle = t3.speech_head.register_forward_hook(raise_stop)
    try:
        yield
    finally:
        handle.remove()


def upstream_capped(engine, monkeypatch, text, language, params, cap, seed):
    """The family's upstream `generate()` (the Llama families: Standard, Multilingual V3, V2)
    with T3 capped at `cap` samples, from a copy of the built-in voice (Standard's swaps the
    exaggeration into `conds.t3` in place), unwatermarked: (its T3 samples, waveform)."""
    import copy

    tts = engine.tts
    captured = {}
    inference = tts.t3.inference

    def capped(*args, **kwargs):
        kwargs["max_new_tokens"] = cap
        captured["tokens"] = inference(*args, **kwargs)
        return captured["tokens"]

    monkeypatch.setattr(tts.t3, "inference", capped)
    monkeypatch.setattr(tts, "watermarker", NoWatermark())
    monkeypatch.setattr(tts, "conds", copy.copy(engine.builtin_voice))
    torch.manual_seed(seed)
    wav = engine.family.generate(tts, text, params, language)[0].numpy()
    return captured["tokens"][0].tolist(), wav


def saved_tensors(path) -> dict:
    """A checkpoint file's tensors by name, safetensors or a torch pickle as upstream reads it."""
    from safetensors import safe_open

    if str(path).endswith(".safetensors"):
        with safe_open(path, "pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    return torch.load(path, map_location="cpu", weights_only=True)
