"""The runaway and truncation guard: flags on synthetic groups, then forced runaways and early
stops on the random-weight model (its stop-token bias set for the test), with retries that
are reproducible from the seed."""

import contextlib
import json

import numpy as np
import pytest

from chatterbox_cli.post import guard
from chatterbox_cli.synth.chunk import Synthesized
from chatterbox_cli.synth.seeds import retry_seed
from chatterbox_cli.text.segment import TextGroup

SR = 24000
TEXT = "The guard listens for groups that run on or stop short."


def chunk(text=TEXT, seconds=3.0, stopped=True, audio=None):
    rng = np.random.default_rng(0)
    audio = 0.1 * rng.standard_normal(int(seconds * SR)) if audio is None else audio
    tokens = [1] * int(seconds * 25)
    return Synthesized(TextGroup(0, text, 0), audio.astype(np.float32), SR, tokens, stopped,
                      0, 0, 0, 0, 0, 0)  # fmt: skip


def test_flags_on_synthetic_groups():
    assert guard.flags(chunk()) == []
    assert guard.flags(chunk(stopped=False)) == ["runaway"]
    assert guard.flags(chunk(seconds=0.5)) == ["too-fast"]  # 55 characters in half a second
    assert guard.flags(chunk(seconds=20)) == ["too-slow"]
    assert guard.flags(chunk(stopped=False, seconds=0.5), user_cap=True) == []  # as asked
    gap = chunk().audio.copy()
    gap[SR // 2 : SR // 2 + 2 * SR] = 0  # two silent seconds inside
    assert guard.flags(chunk(audio=gap)) == ["long-silence"]
    assert guard.flags(chunk(audio=np.full(3 * SR, 1e-4))) == ["near-silent"]


def test_retry_seeds_are_derived_and_distinct():
    seeds = {retry_seed(7, 0, a) for a in range(1, 6)}
    assert len(seeds) == 5 and retry_seed(7, 0, 1) == retry_seed(7, 0, 1)
    assert retry_seed(7, 0, 1) != retry_seed(8, 0, 1)
    assert retry_seed(7, 0, 1) != retry_seed(7, 1, 1)  # each group its own
    assert retry_seed(None, 0, 1) != retry_seed(None, 1, 1)


@contextlib.contextmanager
def stop_bias(engine, value: float):
    """Set T3's stop-token logit bias: very low never stops (runaway), very high stops at
    once (truncation)."""
    t3 = engine.tts.t3
    stop = t3.hp.stop_speech_token
    saved = float(t3.speech_head.bias[stop])
    with pytest.MonkeyPatch.context():
        t3.speech_head.bias.data[stop] = value
        try:
            yield
        finally:
            t3.speech_head.bias.data[stop] = saved


def test_forced_runaway_is_retried_flagged_and_reproducible(cli, engine, checkpoint, tmp_path):
    outs = []
    with stop_bias(engine, -1e4):
        for n in (1, 2):
            out = tmp_path / f"run{n}.wav"
            r = cli("say", "Run on.", "-o", out, "--model-dir", checkpoint, "--seed", 5,
                    "--retries", 1, "--json")  # fmt: skip
            assert r.exit_code == 0, r.output
            outs.append((out, json.loads(r.stdout)))
    (first, a), (second, b) = outs
    assert a["retries"] == 1 and a["flags"] == ["group 0: runaway"]
    assert a["groups"][0]["flags"] == ["runaway"] and not a["groups"][0]["stopped"]
    assert "still flagged after 1 retries" in r.stderr
    header = next(line for line in r.stderr.splitlines() if "chars" in line and "tokens" in line)
    assert "retries" in header and "flags" in header and "…" not in header  # a log: no cut
    assert first.read_bytes() == second.read_bytes()  # same seed: same retries, same file
    assert a["provenance"] == b["provenance"]


def test_forced_early_stop_is_flagged_in_the_batch_manifest(cli, engine, checkpoint, tmp_path):
    src = tmp_path / "rows.txt"
    src.write_text(f"{TEXT}\nAnother sentence that deserves more than nothing.\n")
    outdir = tmp_path / "out"
    with stop_bias(engine, 1e4):
        r = cli("batch", src, "-d", outdir, "--model-dir", checkpoint, "--seed", 2,
                "--retries", 2, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in (outdir / "manifest.jsonl").read_text().splitlines()]
    assert [rec["status"] for rec in records] == ["ok", "ok"]
    for rec in records:
        assert rec["retries"] == 2
        assert "group 0: too-fast" in rec["flags"] and rec["speech_tokens"] == 0
    healthy = cli("batch", src, "-d", tmp_path / "fine", "--model-dir", checkpoint,
                  "--max-new-tokens", 5, "--json")  # fmt: skip
    assert all(json.loads(x)["flags"] == [] for x in healthy.stdout.splitlines())
