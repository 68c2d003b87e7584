"""T3 decode loops for the Llama families (Standard, Multilingual): classifier-free guidance,
learned speech positions, upstream's processor order, a token cap, and B >= 1.

Same pieces in the same order as upstream `T3.inference` (prepare_input_embeds with the
unconditional row's text zeroed, BOS appended a second time, Llama with KV cache, speech_head
over the whole output, `cond + w * (cond - uncond)`, repetition penalty (history from BOS) ->
temperature -> min_p -> top_p -> multinomial; Multilingual V2's alignment analyzer, `align.py`,
between the guidance and the penalty), so with the same RNG state it samples the same tokens:
tests/test_standard.py and tests/test_multilingual*.py prove it against upstream `generate()`.

`cfg_weight == 0` runs one model row (upstream crashes there): `cond + 0 * (cond - uncond)` is
`cond`, so nothing is lost. In a batch each logical row owns one or two model rows.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator

import torch
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TopPLogitsWarper,
)

from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.models.t3 import kv
from chatterbox_cli.models.t3.prefix import Amp
from chatterbox_cli.models.t3.request import Decoding, Row
from chatterbox_cli.models.t3.sample import LlamaSampler, draw
from chatterbox_cli.runtime.device import sync


class _Sampler:
    """One logical row's processors, built as `T3.inference` builds them."""

    def __init__(self, p: SamplingParams, aligner=None):
        self.p = p
        self.aligner = aligner
        self.rep = RepetitionPenaltyLogitsProcessor(penalty=float(p.repetition_penalty))
        self.min_p = MinPLogitsWarper(min_p=p.min_p)
        self.top_p = TopPLogitsWarper(top_p=p.top_p)

    def guided(self, logits: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """(rows, V) -> (1, V): the CFG combination over this row's cond/uncond rows, then the
        alignment analyzer's stop-token control where the family has one."""
        guided = logits[0:1, :]
        if logits.shape[0] > 1:
            uncond = logits[1:2, :]
            cfg = torch.as_tensor(self.p.cfg_weight, device=guided.device, dtype=guided.dtype)
            guided = guided + cfg * (guided - uncond)
        if self.aligner is not None:
            guided = self.aligner(guided, int(history[0, -1]))
        return guided

    def __call__(self, history, logits, generator=None) -> torch.Tensor:
        logits = self.rep(history, logits)
        if self.p.temperature != 1.0:
            logits = logits / self.p.temperature
        logits = self.min_p(history, logits)
        logits = self.top_p(history, logits)
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, num_samples=1, generator=generator)


def _rows(params: SamplingParams) -> int:
    return 2 if params.cfg_weight > 0 else 1


def _prefill_embeds(t3, t3_cond, text_tokens, params) -> tuple[torch.Tensor, tuple[int, int]]:
    """[cond, text, BOS] from `prepare_input_embeds`, plus BOS again as `T3.inference` adds it;
    and where the text lies in it (the alignment analyzer's slice)."""
    rows = _rows(params)
    text = text_tokens.expand(rows, -1)
    start = t3.hp.start_speech_token * torch.ones_like(text[:, :1])
    with warnings.catch_warnings():  # the perceiver uses a deprecated sdpa context manager
        warnings.simplefilter("ignore", FutureWarning)
        embeds, len_cond = t3.prepare_input_embeds(
            t3_cond=t3_cond, text_tokens=text, speech_tokens=start, cfg_weight=params.cfg_weight
        )
    bos = t3.speech_emb(start[:1]) + t3.speech_pos_emb.get_fixed_embedding(0)
    text_slice = (len_cond, len_cond + text_tokens.shape[-1])
    return torch.cat([embeds, bos.expand(rows, -1, -1)], dim=1), text_slice


def _forward(t3, amp: Amp, past, **kwargs):
    """The backbone as upstream's `T3HuggingfaceBackend` calls it (on our in-place cache,
    `kv.py`), then speech_head over the whole output. (Upstream also asks for attentions,
    which sdpa can't give: it only warns.)"""
    with amp():
        out = t3.tfmr(
            use_cache=True,
            output_hidden_states=True,
            return_dict=True,
            past_key_values=past,
            **kwargs,
        )
        return t3.speech_head(out.hidden_states[-1]).float()


def _step_embeds(t3, tokens: torch.Tensor, step: int) -> torch.Tensor:
    """Embeddings of the tokens sampled at `step` (B, 1): speech_emb + learned position."""
    return t3.speech_emb(tokens) + t3.speech_pos_emb.get_fixed_embedding(step + 1)


@torch.inference_mode()
def decode(
    t3, row: Row, run: Decoding | None = None, align: bool = False
) -> Iterator[torch.Tensor]:
    """Yield `row`'s sampled speech tokens, shape (1,), until stop or its cap.

    `row.text_tokens` is (1, L) with SOT/EOT already added (the family does that, as
    `generate()`). `align` runs upstream's alignment analyzer on the guided logits
    (Multilingual).
    """
    run = run or Decoding()
    t3_cond, text_tokens, params = row.t3_cond, row.text_tokens, row.params
    max_new_tokens, generator = row.max_new_tokens, row.generator
    stats, amp, cancel = run.stats, run.amp, run.cancel
    stop = t3.hp.stop_speech_token
    rows = _rows(params)
    t0 = time.perf_counter()
    embeds, text_slice = _prefill_embeds(t3, t3_cond, text_tokens, params)
    with _spying(t3, align) as spy:
        sampler = _Sampler(params, _aligner(t3, spy, text_slice))
        past = kv.cache(t3.tfmr, tokens=max_new_tokens)
        logits = _forward(t3, amp, past, inputs_embeds=embeds)
        history = token = torch.full(
            (1, 1), t3.hp.start_speech_token, dtype=torch.long, device=t3.device
        )
        sync(t3.device)
        t1 = time.perf_counter()
        stats.prefill_s += t1 - t0
        for step in range(max_new_tokens):
            if cancel is not None and cancel.is_set():
                return
            if step > 0:
                t1 = time.perf_counter()
                embeds = _step_embeds(t3, token, step - 1).expand(rows, -1, -1)
                logits = _forward(t3, amp, past, inputs_embeds=embeds)
            token = sampler(history, sampler.guided(logits[:, -1, :], history), generator)
            sync(t3.device)
            stats.decode_s += time.perf_counter() - t1
            stats.steps += 1
            if int(token) == stop:
                stats.stopped = True
                return
            history = torch.cat([history, token], dim=1)
            yield token[:, 0]


@contextlib.contextmanager
def _spying(t3, align: bool):
    """The attention spy the analyzers read (Multilingual), removed when decoding ends."""
    if not align:
        yield None
        return
    from chatterbox_cli.models.t3.align import AttentionSpy

    spy = AttentionSpy(t3.tfmr)
    try:
        yield spy
    finally:
        spy.close()


def _aligner(t3, spy, text_slice: tuple[int, int], row: int = 0, pad: int = 0):
    if spy is None:
        return None
    from chatterbox_cli.models.t3.align import RowAlignment

    return RowAlignment(t3, spy, text_slice, row, pad)


@torch.inference_mode()
def decode_batch(
    t3, rows: list[Row], run: Decoding | None = None, align: bool = False
) -> list[list[int]]:
    """Several logical rows at once: left padding, attention mask, RoPE positions from the mask
    (each row sees the positions it would alone), per-row CFG, stop, cap, params, generator,
    and with `align` a per-row alignment analyzer."""
    run = run or Decoding()
    with _spying(t3, align) as spy:
        return _decode_batch(t3, rows, run.stats, run.amp, run.cancel, spy)


def _decode_batch(t3, rows, stats, amp, cancel, spy) -> list[list[int]]:
    device = t3.device
    stop = t3.hp.stop_speech_token
    t0 = time.perf_counter()
    prefills = [_prefill_embeds(t3, r.t3_cond, r.text_tokens, r.params) for r in rows]
    embeds = [e for e, _ in prefills]
    spans, n = [], 0
    for e in embeds:
        spans.append(slice(n, n + e.shape[0]))
        n += e.shape[0]
    width = max(e.shape[1] for e in embeds)
    x = embeds[0].new_zeros(n, width, embeds[0].shape[-1])
    mask = torch.zeros(n, width, dtype=torch.long, device=device)
    for span, e in zip(spans, embeds, strict=True):
        x[span, width - e.shape[1] :] = e
        mask[span, width - e.shape[1] :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    past = kv.cache(t3.tfmr, tokens=max(r.max_new_tokens for r in rows))
    logits = _forward(t3, amp, past, inputs_embeds=x, attention_mask=mask, position_ids=positions)
    next_position = positions[:, -1:] + 1
    sync(device)
    t1 = time.perf_counter()
    stats.prefill_s += t1 - t0

    aligners = [
        _aligner(t3, spy, text_slice, span.start, width - e.shape[1])
        for (e, text_slice), span in zip(prefills, spans, strict=True)
    ]
    cond_rows = torch.tensor([span.start for span in spans], device=device)
    uncond_rows = torch.tensor([span.stop - 1 for span in spans], device=device)
    owner = [i for i, span in enumerate(spans) for _ in range(span.start, span.stop)]
    owner = torch.tensor(owner, device=device)
    cfg = torch.tensor([[r.params.cfg_weight] for r in rows], device=device)
    sampler = LlamaSampler([r.params for r in rows], device)
    generators = [r.generator for r in rows]
    history = torch.full((len(rows), 1), t3.hp.start_speech_token, dtype=torch.long, device=device)
    last = [t3.hp.start_speech_token] * len(rows)
    tokens: list[list[int]] = [[] for _ in rows]
    done = [False] * len(rows)
    feed = torch.full((n, 1), stop, dtype=torch.long, device=device)
    for step in range(max(r.max_new_tokens for r in rows)):
        if cancel is not None and cancel.is_set():
            break
        if step > 0:
            t1 = time.perf_counter()
            mask = torch.cat([mask, mask.new_ones(n, 1)], dim=1)
            logits = _forward(
                t3,
                amp,
                past,
                inputs_embeds=_step_embeds(t3, feed, step - 1),
                attention_mask=mask,
                position_ids=next_position,
            )
            next_position = next_position + 1
        cond, uncond = logits[cond_rows, -1, :], logits[uncond_rows, -1, :]
        guided = cond + cfg.to(cond.dtype) * (cond - uncond)  # one model row: cfg * 0
        for i, aligner in enumerate(aligners):
            if aligner is not None and not done[i]:
                guided[i : i + 1] = aligner(guided[i : i + 1], last[i])
        drawn = draw(sampler(history, guided), generators)
        taken = []
        for i, token in enumerate(drawn.tolist()):  # the step's one device-to-host copy
            if done[i] or token == stop or rows[i].ended():
                done[i] = True
                taken.append(False)
                continue
            tokens[i].append(token)
            last[i] = token
            done[i] = len(tokens[i]) >= rows[i].max_new_tokens
            taken.append(True)
        drawn = drawn.masked_fill(~torch.tensor(taken, device=device), stop).unsqueeze(1)
        history = torch.cat([history, drawn], dim=1)
        feed = drawn[owner]
        sync(device)
        stats.decode_s += time.perf_counter() - t1
        stats.steps += 1
        if all(done):
            break
    return tokens
