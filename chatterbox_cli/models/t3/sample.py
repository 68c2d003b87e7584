"""Sampling for a whole batch in one pass: each row's logits processors as tensor ops over
(B, V), with per-row parameters, and one draw per row from the row's own random stream.

Row by row in Python, the processors cost more than a batched GPT-2 step on CPU and force a
host sync per row on CUDA. Here every processor is the same arithmetic as its transformers
counterpart (`TemperatureLogitsWarper`, `TopKLogitsWarper`, `TopPLogitsWarper`,
`MinPLogitsWarper`, `RepetitionPenaltyLogitsProcessor`), applied only to the rows that would
have it, so a row's scores equal what its own processor list gives (tests/test_sample.py). The
draw is inverse-CDF on one uniform from the row's generator: the same distribution as
`torch.multinomial`, and a row's samples depend only on its generator, never on the batch (a
batch row's seed already differs from `say --seed`, whose stream `multinomial` draws).
"""

from __future__ import annotations

import torch

from chatterbox_cli.models.sampling import SamplingParams

NEG_INF = -float("inf")


def _column(values, device, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device).unsqueeze(1)


def top_k(scores: torch.Tensor, ks: list[int]) -> torch.Tensor:
    """Per-row `TopKLogitsWarper` (k = 0: off)."""
    vocab = scores.shape[-1]
    ks = [min(k, vocab) for k in ks]
    if not any(ks):
        return scores
    kept = torch.topk(scores, max(ks), dim=-1).values
    floor = kept.gather(1, _column([max(k, 1) - 1 for k in ks], scores.device, torch.long))
    floor = floor.masked_fill(_column([k == 0 for k in ks], scores.device, torch.bool), NEG_INF)
    return scores.masked_fill(scores < floor, NEG_INF)


def top_p(scores: torch.Tensor, ps: torch.Tensor) -> torch.Tensor:
    """Per-row `TopPLogitsWarper`; `ps` (B, 1), a row above 1 is left alone."""
    if bool((ps > 1.0).all()):
        return scores
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    drop = cumulative <= (1 - ps)
    drop[..., -1:] = False
    return scores.masked_fill(drop.scatter(1, order, drop), NEG_INF)


def min_p(scores: torch.Tensor, ps: torch.Tensor) -> torch.Tensor:
    """Per-row `MinPLogitsWarper`; `ps` (B, 1)."""
    probs = torch.softmax(scores, dim=-1)
    remove = probs < ps * probs.amax(dim=-1, keepdim=True)
    order = torch.argsort(scores, descending=True, dim=-1)
    sorted_remove = torch.gather(remove, 1, order)
    sorted_remove[..., :1] = False
    return scores.masked_fill(sorted_remove.scatter(1, order, sorted_remove), NEG_INF)


def penalize(history: torch.Tensor, scores: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """Per-row `RepetitionPenaltyLogitsProcessor`; `history` (B, t), `penalty` (B, 1)."""
    picked = torch.gather(scores, 1, history)
    picked = torch.where(picked < 0, picked * penalty, picked / penalty)
    return scores.scatter(1, history, picked)


def draw(scores: torch.Tensor, generators: list) -> torch.Tensor:
    """One token per row (B,), each from its own generator (None: torch's default one)."""
    probs = torch.softmax(scores, dim=-1)
    uniform = torch.stack(
        [torch.rand((), generator=g, device=scores.device) for g in generators]
    ).to(probs.dtype)
    cdf = probs.cumsum(dim=-1)
    token = torch.searchsorted(cdf, (uniform * cdf[:, -1]).unsqueeze(1), right=True)
    return token.clamp(max=scores.shape[-1] - 1).squeeze(1)


class TurboSampler:
    """`T3.inference_turbo`'s order: temperature -> top-k -> top-p -> repetition penalty, each
    only where its condition there holds."""

    def __init__(self, params: list[SamplingParams], device):
        temps = [
            p.temperature if p.temperature > 0 and p.temperature != 1.0 else 1.0 for p in params
        ]
        self.temperature = _column(temps, device)
        self.ks = [p.top_k for p in params]
        self.ps = _column([p.top_p if p.top_p < 1.0 else 2.0 for p in params], device)
        self.penalty = _column([p.repetition_penalty for p in params], device)

    def __call__(self, history: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        scores = top_p(top_k(logits / self.temperature, self.ks), self.ps)
        return penalize(history, scores, self.penalty)


class LlamaSampler:
    """`T3.inference`'s order after guidance: repetition penalty -> temperature -> min-p ->
    top-p (the last two always applied, as there)."""

    def __init__(self, params: list[SamplingParams], device):
        self.penalty = _column([p.repetition_penalty for p in params], device)
        self.temperature = _column([p.temperature for p in params], device)
        self.min_ps = _column([p.min_p for p in params], device)
        self.top_ps = _column([p.top_p for p in params], device)

    def __call__(self, history: torch.Tensor, guided: torch.Tensor) -> torch.Tensor:
        scores = penalize(history, guided, self.penalty) / self.temperature
        return top_p(min_p(scores, self.min_ps), self.top_ps)
