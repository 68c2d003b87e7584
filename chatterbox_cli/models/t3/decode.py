"""Turbo's T3 decode loops (GPT-2): upstream modules and sampling, a generator with a token cap.

Upstream `T3.inference_turbo` hides `max_gen_len`, prints tqdm and returns only at the end.
This loop calls the same pieces in the same order (prepare_input_embeds, GPT-2 with KV cache,
speech_emb, speech_head, the same logits processors, torch.multinomial), so with the same RNG
state it samples the same tokens - tests/test_parity.py proves it against upstream itself.
Tensors keep a leading batch dimension so batch size > 1 can be added without a rewrite.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from transformers.generation.logits_process import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.models.t3 import kv
from chatterbox_cli.models.t3.prefix import Prefix
from chatterbox_cli.models.t3.request import Decoding, Row
from chatterbox_cli.models.t3.sample import TurboSampler, draw
from chatterbox_cli.runtime.device import sync


def logits_processors(p: SamplingParams) -> LogitsProcessorList:
    """Built exactly as `T3.inference_turbo` builds them (same order, same conditions)."""
    procs = LogitsProcessorList()
    if p.temperature > 0 and p.temperature != 1.0:
        procs.append(TemperatureLogitsWarper(p.temperature))
    if p.top_k > 0:
        procs.append(TopKLogitsWarper(p.top_k))
    if p.top_p < 1.0:
        procs.append(TopPLogitsWarper(p.top_p))
    if p.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(p.repetition_penalty))
    return procs


class FastStep:
    """Opt-in fast decode (`--fast-decode`): one preallocated static KV cache reused for every
    group, so each step has fixed shapes and addresses; on CUDA the one-token step is compiled
    with `mode="reduce-overhead"` (CUDA graphs). B=1 only; tests check it decodes the same
    tokens as the dynamic cache on CPU."""

    def __init__(self, t3, max_len: int = 2048, compile: bool = False):
        from transformers import StaticCache

        self.t3, self.max_len = t3, max_len
        self.cache = StaticCache(config=t3.tfmr.config, max_cache_len=max_len)
        self.step = self._step
        if compile:
            self.step = torch.compile(self._step, mode="reduce-overhead", fullgraph=False)

    def _step(self, embeds: torch.Tensor, position: torch.Tensor):
        out = self.t3.tfmr(
            inputs_embeds=embeds,
            past_key_values=self.cache,
            cache_position=position,
            use_cache=True,
        )
        return out[0]

    def fits(self, length: int, batch: int) -> bool:
        return batch == 1 and length <= self.max_len

    def start(self, embeds: torch.Tensor, prefix: Prefix | None) -> torch.Tensor:
        """Reset the cache, copy in the voice prefix, prefill the rest; last hidden states."""
        self.cache.reset()
        skip = 0
        if prefix is not None:
            skip = prefix.length
            positions = torch.arange(skip, device=embeds.device)
            for i, layer in enumerate(prefix.cache.layers):
                self.cache.update(layer.keys, layer.values, i, {"cache_position": positions})
        positions = torch.arange(skip, embeds.shape[1], device=embeds.device)
        out = self.t3.tfmr(
            inputs_embeds=embeds[:, skip:],
            past_key_values=self.cache,
            cache_position=positions,
            use_cache=True,
        )
        return out[0]


@torch.inference_mode()
def decode(t3, row: Row, run: Decoding | None = None) -> Iterator[torch.Tensor]:
    """Yield `row`'s sampled speech tokens, shape (B,), until stop or its cap.

    The stop token is not yielded, except as the first sample: upstream checks for it only
    from the second on (S3Gen never sees it: `Family.speech_tokens` keeps speech ids only).
    The cap counts every sample, so it equals upstream's `max_gen_len + 1` (upstream samples
    once before its loop). With the run's `prefix` only the text and start token are
    prefilled (same result up to float rounding); with its `fast` step, a static KV cache is
    used where the sequence fits. Setting its `cancel` ends the loop at the next step.
    """
    run = run or Decoding()
    t3_cond, text_tokens, params = row.t3_cond, row.text_tokens, row.params
    max_new_tokens, generator = row.max_new_tokens, row.generator
    stats, prefix, amp, fast, cancel = run.stats, run.prefix, run.amp, run.fast, run.cancel
    procs = logits_processors(params)
    stop = t3.hp.stop_speech_token
    device = t3.device

    t0 = time.perf_counter()
    start = t3.hp.start_speech_token * torch.ones_like(text_tokens[:, :1])
    embeds, _ = t3.prepare_input_embeds(
        t3_cond=t3_cond, text_tokens=text_tokens, speech_tokens=start, cfg_weight=0.0
    )
    length = embeds.shape[1]
    if fast is not None and not fast.fits(length + max_new_tokens, embeds.shape[0]):
        fast = None
    past = None if fast is not None else kv.cache(t3.tfmr, prefix, max_new_tokens)
    skip = prefix.length if prefix is not None else 0
    with amp():
        if fast is not None:
            hidden = fast.start(embeds, prefix)
        else:
            out = t3.tfmr(inputs_embeds=embeds[:, skip:], past_key_values=past, use_cache=True)
            hidden = out[0]
        logits = t3.speech_head(hidden[:, -1:]).float()
    history = token = start
    sync(device)
    t1 = time.perf_counter()
    stats.prefill_s += t1 - t0

    generated: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        if cancel is not None and cancel.is_set():
            return
        if step > 0:
            t1 = time.perf_counter()
            with amp():
                if fast is not None:
                    position = torch.full((1,), length + step - 1, device=device)
                    hidden = fast.step(t3.speech_emb(token), position)
                else:
                    out = t3.tfmr(
                        inputs_embeds=t3.speech_emb(token), past_key_values=past, use_cache=True
                    )
                    hidden = out[0]
                logits = t3.speech_head(hidden).float()
        scores = procs(history, logits[:, -1, :])
        if step > 0 and torch.all(scores == -float("inf")):
            break
        token = torch.multinomial(F.softmax(scores, dim=-1), num_samples=1, generator=generator)
        sync(device)
        stats.decode_s += time.perf_counter() - t1
        stats.steps += 1
        if step > 0 and torch.all(token == stop):  # upstream does not check its first sample
            stats.stopped = True
            break
        generated.append(token)
        history = torch.cat(generated, dim=1)
        yield token[:, 0]


@torch.inference_mode()
def decode_batch(t3, rows: list[Row], run: Decoding | None = None) -> list[list[int]]:
    """Decode several rows at once: left padding, attention mask, absolute positions from the
    mask (GPT-2 has learned absolute positions), per-row stop, cap, sampling and generator.

    Each row sees exactly what it would alone (same positions, pads masked out); with a per-row
    generator its samples do not depend on the batch's composition. The run's `prefix` (every
    row of one voice) is shared: rows then read [voice prefix, pads, text, start], pads masked.
    """
    run = run or Decoding()
    stats, prefix, amp, cancel = run.stats, run.prefix, run.amp, run.cancel
    device = t3.device
    stop = t3.hp.stop_speech_token
    if prefix is not None and any(row.t3_cond is not prefix.cond for row in rows):
        prefix = None
    skip = prefix.length if prefix is not None else 0
    t0 = time.perf_counter()
    embeds = []
    for row in rows:
        start = t3.hp.start_speech_token * torch.ones_like(row.text_tokens[:, :1])
        e, _ = t3.prepare_input_embeds(
            t3_cond=row.t3_cond, text_tokens=row.text_tokens, speech_tokens=start, cfg_weight=0.0
        )
        embeds.append(e[0, skip:])
    width = max(e.shape[0] for e in embeds)
    x = embeds[0].new_zeros(len(rows), width, embeds[0].shape[-1])
    mask = torch.zeros(len(rows), skip + width, dtype=torch.long, device=device)
    mask[:, :skip] = 1
    for i, e in enumerate(embeds):
        x[i, width - e.shape[0] :] = e
        mask[i, skip + width - e.shape[0] :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, skip:]
    past = kv.cache(t3.tfmr, prefix, max(r.max_new_tokens for r in rows))
    with amp():
        out = t3.tfmr(
            inputs_embeds=x,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=past,
            use_cache=True,
        )
        logits = t3.speech_head(out[0][:, -1:]).float()
    next_position = positions[:, -1:] + 1
    sync(device)
    t1 = time.perf_counter()
    stats.prefill_s += t1 - t0

    sampler = TurboSampler([r.params for r in rows], device)
    generators = [r.generator for r in rows]
    history = torch.full((len(rows), 1), t3.hp.start_speech_token, dtype=torch.long, device=device)
    tokens: list[list[int]] = [[] for _ in rows]
    done = [False] * len(rows)
    feed = None
    for step in range(max(row.max_new_tokens for row in rows)):
        if cancel is not None and cancel.is_set():
            break
        if step > 0:
            t1 = time.perf_counter()
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            with amp():
                out = t3.tfmr(
                    inputs_embeds=t3.speech_emb(feed),
                    attention_mask=mask,
                    position_ids=next_position,
                    past_key_values=past,
                    use_cache=True,
                )
                logits = t3.speech_head(out[0]).float()
            next_position = next_position + 1
        scores = sampler(history, logits[:, -1, :])
        drawn = draw(scores, generators)
        if step > 0:  # a row whose every score is -inf ends (as it would alone)
            drawn = drawn.masked_fill(torch.isneginf(scores).all(dim=-1), stop)
        taken = []
        for i, token in enumerate(drawn.tolist()):  # the step's one device-to-host copy
            if done[i] or (token == stop and step > 0) or rows[i].ended():
                done[i] = True
                taken.append(False)
                continue
            tokens[i].append(token)
            done[i] = len(tokens[i]) >= rows[i].max_new_tokens
            taken.append(True)
        keep = torch.tensor(taken, device=device)
        feed = drawn.masked_fill(~keep, stop).unsqueeze(1)
        history = feed if step == 0 else torch.cat([history, feed], dim=1)
        sync(device)
        stats.decode_s += time.perf_counter() - t1
        stats.steps += 1
        if all(done):
            break
    return tokens
