"""Nano (Turbo on a GPT-2 small T3) on its random-weight checkpoint: exact against upstream
`ChatterboxTurboTTS.generate()` driving the Nano-shaped model (also where T3 stops on its own),
batched and static-cache decoding, loading, and the commands.

conftest.py runs this module after the Turbo ones and before Standard's, so each family is
loaded once."""

import io
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import assert_ray_matches_local, fake_hub_cache, serving
from safetensors import safe_open
from upstream_parity import PARAMS, STOP_BIAS, assert_equals_upstream, stop_bias

from chatterbox_cli.models import get
from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.models.t3.request import Decoding, Row

NANO = get("nano")
FAST = ("--max-new-tokens", "8", "--seed", "5")


@pytest.fixture(scope="module")
def nano(nano_checkpoint):
    from chatterbox_cli.models.source import ModelSource
    from chatterbox_cli.synth.loader import load_engine

    return load_engine(ModelSource("nano", nano_checkpoint), "cpu")


def test_the_t3_is_gpt2_small_and_every_tensor_is_loaded(nano, nano_checkpoint):
    t3 = nano.tts.t3
    cfg = t3.tfmr.config
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.model_type) == (12, 768, 12, "gpt2")
    state = t3.state_dict()
    with safe_open(nano_checkpoint / "t3_nano_v1.safetensors", "pt") as f:
        assert set(state) == set(f.keys()) - {"tfmr.wte.weight", "text_head.weight"}
        for key in state:
            assert torch.equal(state[key], f.get_tensor(key)), key
    assert not any(t.is_meta for t in (*t3.parameters(), *t3.buffers()))
    params = sum(p.numel() for p in t3.parameters())
    assert 100e6 < params < 150e6  # GPT-2 small plus the text/speech embeddings and head


@pytest.mark.parametrize("params", PARAMS.values(), ids=list(PARAMS))
def test_tokens_and_waveform_equal_upstream(nano, monkeypatch, params):
    tokens, stopped = assert_equals_upstream(nano, monkeypatch, params, cap=12)
    assert len(tokens) == 12 and not stopped


def test_the_stop_path_equals_upstream(nano, monkeypatch):
    with stop_bias(nano.tts.t3, STOP_BIAS):
        tokens, stopped = assert_equals_upstream(nano, monkeypatch, SamplingParams(), cap=60)
    assert stopped and 2 <= len(tokens) < 59


@pytest.mark.parametrize("fast", [False, True], ids=["dynamic-cache", "static-cache"])
def test_batched_greedy_equals_unbatched_with_the_prefix_cache(nano, fast):
    from chatterbox_cli.models.t3.decode import FastStep, decode, decode_batch
    from chatterbox_cli.models.t3.prefix import Prefix

    t3, conds = nano.tts.t3, nano.builtin_voice
    greedy = SamplingParams(top_k=1)
    texts = ["Hi.", "A somewhat longer sentence for padding.", "Third one!"]
    prefix = Prefix.build(t3, conds.t3)
    rows = [Row(conds.t3, nano.text_tokens(t), greedy, 10) for t in texts]
    batched = decode_batch(t3, rows, Decoding(prefix=prefix))
    step = FastStep(t3, max_len=512) if fast else None
    for text, row in zip(texts, batched, strict=True):
        ids = nano.text_tokens(text)
        alone = [
            int(t[0])
            for t in decode(t3, Row(conds.t3, ids, greedy, 10), Decoding(prefix=prefix, fast=step))
        ]
        assert row == alone


def test_say_batch_verify_and_provenance_name_nano(cli, nano, nano_checkpoint, tmp_path):
    common = ("--model", "nano", "--model-dir", nano_checkpoint, *FAST)
    out = tmp_path / "a.wav"
    r = cli("say", "One sentence. And another one.", *common, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["model"] == "nano" and report["provenance"]["model"] == "nano"
    checked = cli("verify", out, "--json")
    assert checked.exit_code == 0 and json.loads(checked.stdout.splitlines()[0])["ok"]
    for stream in ((), ("--stream-tokens", "4")):
        r = cli("say", "Hello there.", *common, "-o", "-", "--format", "raw", *stream)
        assert r.exit_code == 0 and len(r.stdout_bytes) > 0 and len(r.stdout_bytes) % 2 == 0
    rows = tmp_path / "rows.txt"
    rows.write_text("First line.\nSecond line.\n")
    r = cli("batch", rows, "-d", tmp_path / "out", *common, "--json")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["provenance"]["model"] for rec in records] == ["nano", "nano"]


def test_int8_and_fast_decode_run_on_nano(cli, nano, nano_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("CHATTERBOX_CACHE_DIR", str(tmp_path / "cache"))
    common = ("--model", "nano", "--model-dir", nano_checkpoint, *FAST)
    for flags in (("--quantize", "int8"), ("--fast-decode",)):
        out = tmp_path / f"{flags[0][2:]}.wav"
        r = cli("say", "Flags work on Nano too.", *common, *flags, "-o", out, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["groups"][0]["speech_tokens"] == 8
        assert sf.info(str(out)).frames > 0


def test_a_turbo_voice_speaks_with_nano_and_other_families_refuse_it(
    cli, nano, nano_checkpoint, reference_wav, voices_dir, tmp_path
):
    from chatterbox_cli.models.voices import load_cached
    from chatterbox_cli.runtime.errors import VoiceError

    r = cli("voice", "cache", reference_wav, "--name", "ann", "--model", "nano",
            "--model-dir", nano_checkpoint, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    made = torch.load(voices_dir / "ann.pt", weights_only=True)
    assert made["meta"]["model"] == "nano"
    made["meta"]["model"] = "turbo"  # as `voice cache --model turbo` writes it: same shapes
    torch.save(made, voices_dir / "turbo-ann.pt")
    load_cached(voices_dir / "ann.pt", "turbo")
    r = cli("say", "A Turbo voice.", "--voice", "turbo-ann", "--model", "nano",
            "--model-dir", nano_checkpoint, *FAST, "-o", tmp_path / "v.wav")  # fmt: skip
    assert r.exit_code == 0, r.output
    with pytest.raises(VoiceError, match="made for the turbo model, not standard"):
        load_cached(voices_dir / "turbo-ann.pt", "standard")


def test_models_lists_every_family_and_finds_a_hub_cache(nano_checkpoint, tmp_path):
    """A snapshot laid out as huggingface_hub keeps it (refs/main -> snapshots/REV) counts as
    cached; an empty cache doesn't. A subprocess: the hub client reads HF_HOME at import."""
    import subprocess
    import sys

    fake_hub_cache(tmp_path / "hf", "ResembleAI/chatterbox-nano", list(nano_checkpoint.iterdir()))
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "chatterbox_cli", "models", "--json"], env=env,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = {row["model"]: row for row in json.loads(r.stdout)}
    assert {"turbo", "nano", "standard", "multilingual"} <= set(rows)
    assert rows["nano"]["cached"] and not rows["turbo"]["cached"]
    assert rows["nano"]["hub_repo"] == "ResembleAI/chatterbox-nano"
    assert rows["nano"]["t3_file"] == "t3_nano_v1.safetensors" and rows["nano"]["size"] == "110M"
    assert len(rows["multilingual"]["languages"]) == 23
    table = subprocess.run([sys.executable, "-m", "chatterbox_cli", "models"], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert table.returncode == 0 and "[laugh]" in table.stderr


def test_a_nano_server_speaks(nano):
    import httpx

    body = {"input": "Hello from Nano.", "seed": 1, "max_new_tokens": 6, "response_format": "wav"}
    with serving(nano) as url, httpx.Client(base_url=url, timeout=300) as client:
        assert client.get("/health").json()["model"] == "nano"
        r = client.post("/v1/audio/speech", json=body)
        assert r.status_code == 200, r.text
        audio, sr = sf.read(io.BytesIO(r.content))
        assert sr == 24000 and np.abs(audio).max() > 0
        assert json.loads(r.headers["x-chatterbox-provenance"])["model"] == "nano"


def test_batch_on_an_embedded_ray_cluster_matches_local(cli, nano, nano_checkpoint, tmp_path):
    """Nano through the Ray executor (a fresh embedded cluster, one worker): the same files and
    speech tokens as the local executor, provenance naming Nano."""
    assert_ray_matches_local(
        cli,
        tmp_path,
        ["First line for Nano.", "A second, longer line for Nano."],
        "nano",
        "--model-dir",
        nano_checkpoint,
        *FAST,
        "--seed",
        "3",
    )
