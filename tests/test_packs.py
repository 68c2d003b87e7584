"""The Single Language Pack on a random-weight pt-br pack checkpoint (its own T3 and `s3gen_v3`
file): it loads what its folder holds, speaks its language and refuses others, from a model dir
and from a hub cache joined with ResembleAI/chatterbox's files, offline.

conftest.py runs this module last."""

import json
import os
import subprocess
import sys

import pytest
import soundfile as sf
import torch
from conftest import fake_hub_cache
from upstream_parity import saved_tensors

from chatterbox_cli.models import FAMILIES, get
from chatterbox_cli.models.base import SAMPLES_PER_TOKEN
from chatterbox_cli.models.packs import PACKS, pack_model
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.synth.request import RenderOptions
from chatterbox_cli.text.segment import TextGroup

PACK = get("multilingual-pt-br")
FAST = ("--cfm-steps", "2", "--max-new-tokens", "6")


@pytest.fixture(scope="module")
def pack(pack_checkpoint):
    from chatterbox_cli.models.source import ModelSource
    from chatterbox_cli.synth.loader import load_engine

    return load_engine(ModelSource(PACK.name, pack_checkpoint), "cpu")


def test_every_pack_is_a_family_named_by_its_flag():
    assert {pack_model("multilingual", p) for p in PACKS} <= set(FAMILIES)
    assert pack_model("turbo", None) == "turbo"
    hindi = get(pack_model("multilingual", "HI"))
    assert hindi.hub_repo == "ResembleAI/Chatterbox-Multilingual-hi"
    assert hindi.t3_file == "t3_hi.safetensors" and hindi.languages == ("hi",)
    with pytest.raises(BadInput, match="unknown pack 'xx'; use one of: zh-cmn"):
        pack_model("multilingual", "xx")
    with pytest.raises(BadInput, match="--model multilingual --pack pt-br"):
        pack_model("turbo", "pt-br")


def test_flags_that_contradict_the_pack_fail_before_loading(cli, tmp_path):
    missing = ("--model-dir", tmp_path / "no-such-model", "-o", tmp_path / "x.wav")
    for flags, needle in [
        (("-m", "multilingual", "--pack", "pt-br", "-l", "es"), "speaks Brazilian Portuguese"),
        (("-m", "standard", "--pack", "pt-br"), "--model multilingual --pack pt-br"),
        (("-m", "multilingual", "--pack", "klingon"), "unknown pack 'klingon'"),
    ]:
        r = cli("say", "Olá.", *flags, *missing)
        assert r.exit_code == 2, r.output
        (line,) = r.stderr.strip().splitlines()
        assert needle in line


@pytest.mark.parametrize(
    "part,file", [("t3", "t3_pt_br.safetensors"), ("s3gen", "s3gen_v3.pt"), ("ve", "ve.pt")]
)
def test_the_pack_loads_the_files_its_folder_holds(pack, pack_checkpoint, part, file):
    module = getattr(pack.tts, part)
    state = module.state_dict()
    path = pack_checkpoint / file
    saved = saved_tensors(path)
    expected = set(saved) - {"text_head.weight"}
    assert expected <= set(state)
    for key in expected:
        assert torch.equal(state[key], saved[key]), key


def test_the_pack_speaks_v3s_way(pack):
    """V3's semantics: no analyzer (sdpa), penalty 1.2, the last token's audio cut."""
    assert PACK.defaults.repetition_penalty == 1.2
    assert pack.tts.t3.tfmr.config._attn_implementation == "sdpa"
    group = TextGroup(0, "Olá, tudo bem?", 0, "pt")
    (chunk,) = pack.synthesize([group], pack.builtin_voice, RenderOptions(PACK.defaults, 8))
    assert len(chunk.audio) == (len(chunk.speech_tokens) - 1) * SAMPLES_PER_TOKEN
    assert not PACK.reads_voices_of("multilingual")  # its own S3Gen prepares its voices


def test_say_with_the_pack_from_a_model_dir(cli, pack, pack_checkpoint, tmp_path):
    out = tmp_path / "pt.wav"
    model = ("-m", "multilingual", "--pack", "pt-br", "--model-dir", pack_checkpoint)
    r = cli("say", "Olá. Tudo bem com você?", *model, *FAST, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["model"] == PACK.name and report["language"] == "pt"
    assert report["t3_file"] == report["provenance"]["t3_file"] == "t3_pt_br.safetensors"
    wav, sr = sf.read(out, dtype="float32")
    assert len(wav) / sr == pytest.approx(report["audio_s"], abs=0.01)


def test_the_pack_from_the_hub_cache_joins_chatterbox_files_offline(
    pack_checkpoint, multilingual_checkpoint, tmp_path
):
    """The pack's repo holds its T3, S3Gen and tokenizer; ResembleAI/chatterbox the voice
    encoder, built-in voice and Cangjie table. Offline, both cached: it speaks."""
    hf = tmp_path / "hf"
    own = ("t3_pt_br.safetensors", "s3gen_v3.pt", "grapheme_mtl_merged_expanded_v1.json")
    fake_hub_cache(hf, PACK.hub_repo, [pack_checkpoint / f for f in own], "feedbeef")
    fake_hub_cache(hf, "ResembleAI/chatterbox", list(multilingual_checkpoint.iterdir()))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf)}
    env["CHATTERBOX_CACHE_DIR"] = str(tmp_path / "cache")
    env.pop("CHATTERBOX_MODEL_DIR", None)
    cli = [sys.executable, "-m", "chatterbox_cli"]
    out = tmp_path / "pt.wav"
    r = subprocess.run([*cli, "say", "Olá.", "-m", "multilingual", "--pack", "pt-br", *FAST,
                        "-o", str(out), "--json"], env=env, capture_output=True, text=True,
                       timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout)
    assert report["model_source"] == f"hf://{PACK.hub_repo}"
    assert report["provenance"]["checkpoint"] == f"{PACK.hub_repo}@feedbeef"
    joined = tmp_path / "cache" / "joined" / PACK.name / "snapshots" / "feedbeef"
    assert (joined / "s3gen_v3.pt").resolve() == (pack_checkpoint / "s3gen_v3.pt").resolve()
    assert (joined / "ve.pt").resolve() == (multilingual_checkpoint / "ve.pt").resolve()
    r = subprocess.run([*cli, "models", "--json"], env=env, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    rows = {row["model"]: row for row in json.loads(r.stdout)}
    assert rows[PACK.name]["cached"] and rows[PACK.name]["languages"] == ["pt"]
    assert not rows["multilingual-hi"]["cached"]
