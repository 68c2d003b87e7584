"""The batched sampler: each row's scores equal its own transformers processors' output, and
each row's draw depends only on its own generator (no model needed)."""

from dataclasses import replace

import torch

from chatterbox_cli.models import get
from chatterbox_cli.models.t3.decode import logits_processors
from chatterbox_cli.models.t3.sample import LlamaSampler, TurboSampler, draw

TURBO = get("turbo").defaults
PARAMS = [
    TURBO,
    replace(TURBO, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0),
    replace(TURBO, temperature=0.5, top_k=50, top_p=0.8, repetition_penalty=2.0),
    replace(TURBO, top_k=1),
    replace(TURBO, temperature=1.3, top_k=7000, top_p=0.5),
]


def test_turbo_scores_equal_each_rows_own_processors():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(len(PARAMS), 6563, generator=gen) * 3
    history = torch.randint(0, 6563, (len(PARAMS), 9), generator=gen)
    scores = TurboSampler(PARAMS, "cpu")(history, logits)
    for i, p in enumerate(PARAMS):
        own = logits_processors(p)(history[i : i + 1], logits[i : i + 1].clone())
        assert torch.equal(scores[i : i + 1], own), p
    assert torch.isfinite(scores[3]).sum() == 1  # top-k 1 leaves one token


def test_llama_scores_equal_each_rows_own_processors():
    from chatterbox_cli.models.t3.cfg import _Sampler

    std = get("multilingual").defaults
    params = [
        std,
        replace(std, temperature=1.0, min_p=0.0, top_p=1.0, repetition_penalty=1.0),
        replace(std, temperature=0.6, min_p=0.2, top_p=0.7, repetition_penalty=1.2),
        replace(std, min_p=1.0),
    ]
    gen = torch.Generator().manual_seed(2)
    guided = torch.randn(len(params), 8194, generator=gen) * 3
    history = torch.randint(0, 8194, (len(params), 5), generator=gen)
    scores = LlamaSampler(params, "cpu")(history, guided)
    for i, p in enumerate(params):
        own = _Sampler(p)
        expected = own.rep(history[i : i + 1], guided[i : i + 1].clone())
        if p.temperature != 1.0:
            expected = expected / p.temperature
        expected = own.top_p(history, own.min_p(history, expected))
        assert torch.equal(scores[i : i + 1], expected), p
    assert torch.isfinite(scores[3]).sum() == 1  # min-p 1 keeps the top token only


def test_draws_depend_only_on_the_rows_generator_and_follow_the_scores():
    logits = torch.randn(3, 100, generator=torch.Generator().manual_seed(1))

    def draws(rows, seeds, steps=50):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        return [draw(logits[:rows], gens).tolist() for _ in range(steps)]

    alone = [step[0] for step in draws(1, [7])]
    together = [step[0] for step in draws(3, [7, 8, 9])]
    assert alone == together
    masked = logits.clone()
    masked[:, 10:] = -float("inf")
    picks = torch.stack([draw(masked, [None] * 3) for _ in range(200)])
    assert int(picks.max()) < 10 and len(set(picks.flatten().tolist())) > 3


def test_batches_are_sorted_by_length_within_windows_and_keep_every_job():
    from chatterbox_cli.synth.batched import SORT_WINDOW, default_batch_size, plan_batches

    jobs = [(i, length) for i, length in enumerate([5, 1, 9, 3, 7, 2, 8, 4, 6, 0] * 4)]
    batches = plan_batches(jobs, 2, lambda job: job[1])
    assert sorted(j for b in batches for j in b) == jobs
    assert all(len(b) == 2 for b in batches)
    window = 2 * SORT_WINDOW
    for start in range(0, len(jobs), window):
        flat = [j for b in batches[start // 2 : (start + window) // 2] for j in b]
        assert [j[1] for j in flat] == sorted(j[1] for j in jobs[start : start + window])
    assert default_batch_size(get("turbo")) == 2 * default_batch_size(get("standard"))
