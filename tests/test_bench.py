"""`chatterbox bench` on the random checkpoint with tiny token counts."""

import json
import statistics
from types import SimpleNamespace

import pytest

from chatterbox_cli.bench import harness
from chatterbox_cli.runtime.errors import BadInput

TWO_GROUPS = "A first paragraph here.\n\nA second paragraph, which is quite a bit longer."


def test_spread_is_proportional_exact_and_positive():
    assert harness.spread(10, [10, 30]) == [3, 7]
    assert sum(harness.spread(101, [7, 1, 50, 3])) == 101
    assert min(harness.spread(4, [1000, 1, 1, 1])) == 1
    with pytest.raises(BadInput):
        harness.spread(2, [1, 1, 1])


def test_tokens_auto_scales_with_length(engine):
    ctx = harness.BenchContext(engine=engine, conds=None, tokens="auto")
    short, long = harness.BenchItem("s", "x" * 10), harness.BenchItem("l", "x" * 100)
    assert (ctx.budget(short), ctx.budget(long)) == (17, 170)
    assert harness.BenchContext(engine=engine, conds=None).budget(long) is None
    with pytest.raises(BadInput):
        harness.parse_tokens("lots")


def summary(total, tok_s):
    return {"simple": {"t": {"total_s": {"median": total}, "t3_tok_s": {"median": tok_s}}}}


def test_compare_flags_regressions_in_the_bad_direction_only():
    old = summary(10.0, 20.0)
    assert not any(r.regressed for r in harness.compare(summary(10.9, 19.0), old, 0.10))
    slower = harness.compare(summary(11.5, 20.0), old, 0.10)
    assert [r.figure for r in slower if r.regressed] == ["total_s"]
    fewer_tokens = harness.compare(summary(9.0, 17.0), old, 0.10)
    assert [r.figure for r in fewer_tokens if r.regressed] == ["t3_tok_s"]
    assert harness.compare(summary(9.0, 17.0), {"other": {}}, 0.10) == []


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, checkpoint, engine):
    from typer.testing import CliRunner

    from chatterbox_cli.cli import app

    out = tmp_path_factory.mktemp("bench") / "run.json"
    args = [
        "bench",
        "--model-dir",
        str(checkpoint),
        "--text",
        "One short text.",
        "--text",
        TWO_GROUPS,
        "--tokens",
        "6",
        "--warmup",
        "0",
        "--repeats",
        "2",
        "--items",
        "2",
        "--batch-size",
        "3",
        "--stream-tokens",
        "4",
        "--json",
        str(out),
        "--markdown",
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    return result, json.loads(out.read_text())


def test_bench_json_schema_and_medians(bench_run):
    result, doc = bench_run
    assert result.exit_code == 0, result.output
    assert doc["schema"] == 1 and doc["interrupted"] is False
    assert doc["env"]["random_weights"] is True and doc["env"]["device"] == "cpu"
    assert doc["config"]["budgets"] == {"text1": 6, "text2": 6}
    runs = doc["runs"]
    assert len(runs) == 5 * 2 * 2  # modes x texts x repeats (warm-up not recorded)
    for mode in ("upstream", "simple", "stream", "stream-tokens", "batch"):
        for item in ("text1", "text2"):
            mine = [r for r in runs if r["mode"] == mode and r["item"] == item]
            entry = doc["summary"][mode][item]
            totals = [r["total_s"] for r in mine]
            assert entry["total_s"]["median"] == pytest.approx(statistics.median(totals))
            assert entry["total_s"]["min"] == min(totals) and entry["total_s"]["n"] == 2
            for r in mine:
                assert r["rtf"] == pytest.approx(r["total_s"] / r["audio_s"])
                if mode.startswith("stream"):
                    assert 0 < r["ttfa_s"] <= r["total_s"]
                else:
                    assert r["ttfa_s"] == r["total_s"]  # the file exists only at the end
                assert set(r["stages"]) == set(harness.STAGES)
                assert r["stages"]["t3_decode"] > 0 and r["stages"]["flow"] > 0
                assert r["peak_rss_mb"] > 1000
        ratio = doc["summary"][mode]["text1"]["vs_upstream"]
        up = doc["summary"]["upstream"]["text1"]["rtf"]["median"]
        own = doc["summary"][mode]["text1"]["rtf"]["median"]
        assert ratio == pytest.approx(up / own)  # a speed-up: higher is faster
        entry, base = doc["summary"][mode]["text2"], doc["summary"]["upstream"]["text2"]
        first = entry["ttfa_s"]["median"] / base["total_s"]["median"]
        assert entry["ttfa_vs_upstream"] == pytest.approx(first)
        simple = doc["summary"]["simple"]["text2"]["total_s"]["median"]
        assert entry["total_vs_simple"] == pytest.approx(entry["total_s"]["median"] / simple)
    assert doc["summary"]["upstream"]["text1"]["stages"]["loudness"] is None  # not measured


def test_fixed_tokens_are_equal_across_modes(bench_run):
    _, doc = bench_run
    per_text = {r["speech_tokens"] for r in doc["runs"] if r["mode"] != "batch"}
    assert per_text == {6}
    batch = {r["speech_tokens"] for r in doc["runs"] if r["mode"] == "batch"}
    assert batch == {2 * 6}  # --items 2
    simple = [r for r in doc["runs"] if r["mode"] == "simple" and r["item"] == "text2"]
    upstream = [r for r in doc["runs"] if r["mode"] == "upstream" and r["item"] == "text2"]
    # same tokens -> same audio length (ours adds a 0.2 s pause between its two groups)
    assert simple[0]["audio_s"] == pytest.approx(upstream[0]["audio_s"] + 3 / 25 + 0.2, abs=0.01)


def test_markdown_table_on_stdout(bench_run):
    result, _ = bench_run
    lines = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| Mode | Text |") and len(lines) == 2 + 5 * 2
    assert any(line.startswith("| upstream | text1 |") and "| 1.00 |" in line for line in lines)


def test_compare_exit_codes(bench_run, cli, checkpoint, tmp_path):
    _, doc = bench_run
    quick = [
        "bench",
        "--model-dir",
        checkpoint,
        "--text",
        "One short text.",
        "--tokens",
        "6",
        "--mode",
        "simple",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "-q",
    ]

    def baseline(k):
        """The run's own summary, made k times slower (k > 1) or faster (k < 1)."""
        scaled = json.loads(json.dumps(doc))
        for per_item in scaled["summary"].values():
            for entry in per_item.values():
                for figure in ("ttfa_s", "total_s", "rtf"):
                    entry[figure]["median"] *= k
                for figure in ("t3_tok_s", "throughput"):
                    entry[figure]["median"] /= k
        return scaled

    (tmp_path / "slow_old.json").write_text(json.dumps(baseline(100.0)))
    (tmp_path / "fast_old.json").write_text(json.dumps(baseline(0.01)))
    ok = cli(*quick, "--compare", tmp_path / "slow_old.json")
    assert ok.exit_code == 0, ok.output
    bad = cli(*quick, "--compare", tmp_path / "fast_old.json")
    assert bad.exit_code == 1 and "regressed" in bad.stderr
    missing = cli(*quick, "--compare", tmp_path / "nope.json")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_interrupt_prints_what_was_measured(cli, checkpoint, tmp_path, monkeypatch):
    real = harness.measure
    calls = []

    def measure_then_interrupt(*args):
        calls.append(args)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(harness, "measure", measure_then_interrupt)
    out = tmp_path / "partial.json"
    r = cli(
        "bench",
        "--model-dir",
        checkpoint,
        "--text",
        "Hi there.",
        "--tokens",
        "4",
        "--mode",
        "simple",
        "--warmup",
        "0",
        "--repeats",
        "3",
        "--json",
        out,
    )
    assert r.exit_code == 130
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and len(doc["runs"]) == 1
    assert "interrupted" in r.stderr and "Benchmark" in r.stderr


def test_upstream_instrumentation_changes_nothing(engine, monkeypatch):
    """Timing upstream's stages from outside must not alter what `generate()` computes."""
    import numpy as np
    import torch

    tts = engine.tts
    monkeypatch.setattr(tts, "conds", engine.builtin_voice)

    def run(instrumented: bool):
        stages, counted = dict.fromkeys(harness.STAGES), []
        torch.manual_seed(11)
        if instrumented:
            with harness.instrument_upstream(engine, stages, 6, counted):
                return tts.generate("Instrumented or not."), stages, counted
        original = tts.t3.inference_turbo
        monkeypatch.setattr(
            tts.t3, "inference_turbo", lambda *a, **k: original(*a, **{**k, "max_gen_len": 5})
        )
        try:
            return tts.generate("Instrumented or not."), stages, counted
        finally:
            monkeypatch.undo()
            monkeypatch.setattr(tts, "conds", engine.builtin_voice)

    timed, stages, counted = run(True)
    plain, _, _ = run(False)
    np.testing.assert_array_equal(timed.numpy(), plain.numpy())
    assert counted == [6] and all(stages[k] > 0 for k in ("text", "t3_decode", "flow", "hifigan"))
    assert not isinstance(tts.watermarker, SimpleNamespace)  # restored afterwards
