"""The Multilingual family on its random-weight checkpoint: exactness against upstream
`ChatterboxMultilingualTTS.generate()` (alignment analyzer included), batching, loading with no
network, and the CLI in several languages.

conftest.py runs this module last, after the Turbo and Standard ones: one family at a time."""

import copy
import io
import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open

from chatterbox_cli.families import SPEECH_VOCAB, get
from chatterbox_cli.t3_align import hook_count
from chatterbox_cli.text import TextGroup

MTL = get("multilingual")
FAST = ("--cfm-steps", "2", "--max-new-tokens", "6")


@pytest.fixture(scope="module")
def mtl(multilingual_checkpoint):
    from chatterbox_cli.engine import load_engine
    from chatterbox_cli.source import ModelSource

    return load_engine(ModelSource("multilingual", multilingual_checkpoint), "cpu")


@pytest.fixture
def model(multilingual_checkpoint):
    return ("--model", "multilingual", "--model-dir", multilingual_checkpoint)


class NoWatermark:
    def apply_watermark(self, wav, sample_rate):
        return wav


def _upstream(mtl, monkeypatch, text, language, params, cap, seed):
    """Upstream `generate()` with T3 capped at `cap` samples: (its T3 samples, waveform)."""
    tts = mtl.tts
    captured = {}
    inference = tts.t3.inference

    def capped(*args, **kwargs):
        kwargs["max_new_tokens"] = cap
        captured["tokens"] = inference(*args, **kwargs)
        return captured["tokens"]

    monkeypatch.setattr(tts.t3, "inference", capped)
    monkeypatch.setattr(tts, "watermarker", NoWatermark())
    monkeypatch.setattr(tts, "conds", copy.copy(mtl.builtin_voice))
    torch.manual_seed(seed)
    wav = MTL.generate(tts, text, params, language)[0].numpy()
    return captured["tokens"][0].tolist(), wav


@pytest.mark.parametrize(
    "language,text,params",
    [
        ("de", "Guten Tag: das ist ein Test… mit „Anführungszeichen“", MTL.defaults),
        (
            "ja",
            "今日は良い天気です。公園に行きましょう！",
            replace(
                MTL.defaults,
                temperature=1.0,
                top_p=0.9,
                min_p=0.0,
                repetition_penalty=1.3,
                cfg_weight=0.3,
                exaggeration=0.8,
            ),
        ),
        ("ar", "مرحبا بكم. كيف حالكم؟", MTL.defaults),
    ],
    ids=["de-defaults", "ja-other-knobs", "ar"],
)
def test_tokens_and_waveform_equal_upstream_generate(mtl, monkeypatch, language, text, params):
    cap, seed = 10, 1234
    sampled, upstream_wav = _upstream(mtl, monkeypatch, text, language, params, cap, seed)
    assert hook_count(mtl.tts.t3.tfmr) == 0  # what upstream's analyzer hooked is gone
    assert not mtl.tts.t3.tfmr.config.output_attentions

    group = TextGroup(0, text, 0, language)
    (chunk,) = mtl.synthesize([group], mtl.builtin_voice, params, max_new_tokens=cap, seed=seed)
    assert hook_count(mtl.tts.t3.tfmr) == 0
    assert len(sampled) == cap  # neither stopped early here
    assert chunk.speech_tokens == MTL.speech_tokens(sampled) == sampled
    assert chunk.audio.shape == upstream_wav.shape
    np.testing.assert_array_equal(chunk.audio, upstream_wav)


def test_upstream_hooks_pile_up_and_ours_do_not(mtl, monkeypatch):
    from chatterbox_cli.t3_align import removing_new_hooks

    tts = mtl.tts
    monkeypatch.setattr(tts, "conds", copy.copy(mtl.builtin_voice))
    ids = mtl.text_tokens("Hallo.", "de")
    with removing_new_hooks(tts.t3.tfmr):
        for calls in (1, 2):
            tts.t3.inference(t3_cond=tts.conds.t3, text_tokens=ids.expand(2, -1), max_new_tokens=1)
            assert hook_count(tts.t3.tfmr) == 3 * calls
    assert hook_count(tts.t3.tfmr) == 0
    from chatterbox_cli.t3_cfg import decode

    for _ in range(2):
        assert len(list(decode(tts.t3, tts.conds.t3, ids, MTL.defaults, 2, align=True))) == 2
        assert hook_count(tts.t3.tfmr) == 0


def test_the_analyzer_forces_a_stop_after_a_repeated_token(mtl):
    """With the repetition penalty off and greedy choice, the per-row analyzer ends a row whose
    last two tokens are equal, as upstream's does; without it the row runs to the cap."""
    from chatterbox_cli.t3_cfg import decode

    t3, cond = mtl.tts.t3, mtl.builtin_voice.t3
    ids = mtl.text_tokens("Dies ist ein etwas längerer Satz, der nicht enden soll.", "de")
    greedy = replace(MTL.defaults, min_p=1.0, repetition_penalty=1.0, cfg_weight=0.0)
    free = [int(t) for t in decode(t3, cond, ids, greedy, 40)]
    repeat = next((i for i in range(1, len(free)) if free[i] == free[i - 1]), None)
    if repeat is None:
        pytest.skip("this checkpoint never repeats a token greedily")
    aligned = [int(t) for t in decode(t3, cond, ids, greedy, 40, align=True)]
    assert aligned == free[: repeat + 1]


def test_invalid_ids_are_dropped_before_s3gen_valid_ones_kept():
    valid = [5, 6560, 0, 17]
    assert MTL.speech_tokens(valid) == valid
    assert MTL.speech_tokens([5, 6563, 6560, 8000, 0]) == [5, 6560, 0]
    assert MTL.speech_tokens([9, SPEECH_VOCAB, 5, 6]) == [5, 6]  # from after a start token


def test_batched_greedy_equals_unbatched_and_seeded_rows_are_independent(mtl):
    from chatterbox_cli.t3_cfg import decode, decode_batch
    from chatterbox_cli.t3_decode import Row

    t3, cond = mtl.tts.t3, mtl.builtin_voice.t3
    greedy = replace(MTL.defaults, min_p=1.0)
    texts = [
        ("Kurz.", "de"),
        ("Un texte un peu plus long pour les autres.", "fr"),
        ("中文。", "ja"),
    ]
    params = [greedy, replace(greedy, cfg_weight=0.0), replace(greedy, cfg_weight=1.0)]
    rows = [
        Row(cond, mtl.text_tokens(t, lang), p, 8)
        for (t, lang), p in zip(texts, params, strict=True)
    ]
    batched = decode_batch(t3, rows, align=True)
    for row, got in zip(rows, batched, strict=True):
        alone = decode(t3, cond, row.text_tokens, row.params, 8, align=True)
        assert got == [int(t) for t in alone]
    assert hook_count(t3.tfmr) == 0

    def row(text, lang, seed):
        gen = torch.Generator().manual_seed(seed)
        return Row(cond, mtl.text_tokens(text, lang), MTL.defaults, 8, gen)

    alone = decode_batch(t3, [row("Kurz.", "de", 5)], align=True)
    together = decode_batch(
        t3, [row("Un texte plus long.", "fr", 6), row("Kurz.", "de", 5)], align=True
    )
    assert together[1] == alone[0] and together[0] != alone[0]


@pytest.mark.parametrize(
    "part,file", [("t3", "t3_mtl23ls_v2.safetensors"), ("s3gen", "s3gen.pt"), ("ve", "ve.pt")]
)
def test_every_checkpoint_tensor_is_loaded_exactly(mtl, multilingual_checkpoint, part, file):
    module = getattr(mtl.tts, part)
    state = {k: v for k, v in module.state_dict().items() if not k.startswith("patched_model.")}
    path = multilingual_checkpoint / file
    if file.endswith(".safetensors"):
        with safe_open(path, "pt") as f:
            saved = {k: f.get_tensor(k) for k in f.keys()}
    else:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    expected = set(saved) - {"text_head.weight"}
    assert set(state) == expected
    for key in expected:
        assert torch.equal(state[key], saved[key]), key
    assert not any(t.is_meta for t in (*module.parameters(), *module.buffers()))


def test_cangjie_table_is_read_from_the_model_folder(mtl, multilingual_checkpoint):
    converter = mtl.tts.tokenizer.cangjie_converter
    converter._load_cangjie_mapping()
    table = json.loads((multilingual_checkpoint / "Cangjie5_TC.json").read_text("utf-8"))
    glyph, code = table[30].split("\t")
    assert converter._cangjie_encode(glyph) == code


def test_chinese_without_pkusegs_model_is_one_clear_line(cli, model, tmp_path, monkeypatch):
    monkeypatch.setenv("PKUSEG_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr("spacy_pkuseg.config.pkuseg_home", str(tmp_path / "empty"))
    r = cli("say", "你好。", "-l", "zh", *model, "-o", tmp_path / "zh.wav")
    assert r.exit_code == 2
    assert "Chinese needs pkuseg's word segmentation model" in r.stderr
    assert "spacy_pkuseg.pkuseg()" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "zh.wav").exists()


def test_language_is_checked_before_anything_loads(cli, tmp_path):
    missing = tmp_path / "no-such-model"
    r = cli("say", "Hallo.", "-m", "multilingual", "-l", "xx", "--model-dir", missing)
    assert r.exit_code == 2 and "unknown language 'xx'" in r.stderr and "de (German)" in r.stderr
    r = cli("say", "Hallo.", "-l", "de", "--model-dir", missing)
    assert r.exit_code == 2 and "English only" in r.stderr and "--model multilingual" in r.stderr


@pytest.mark.parametrize(
    "language,text",
    [
        ("de", "Dr. Müller kam am 3. Oktober an. Er war müde!"),
        ("ja", "今日は良い天気です。公園に行きましょう！"),
        ("ar", "مرحبا بكم. كيف حالكم؟"),
    ],
)
def test_say_writes_watermarked_audio(cli, mtl, model, tmp_path, language, text):
    import perth

    out = tmp_path / f"{language}.wav"
    r = cli("say", text, "-l", language, *model, *FAST, "--seed", 3, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["language"] == language and report["model"] == "multilingual"
    wav, sr = sf.read(out, dtype="float32")
    assert sr == 24000 and len(wav) / sr == pytest.approx(report["audio_s"], abs=0.01)
    assert perth.PerthImplicitWatermarker().get_watermark(wav, sample_rate=sr) > 0.5


def test_say_streams_to_stdout(cli, mtl, model):
    r = cli("say", "Hej. Hvordan går det?", "-l", "da", *model, *FAST, "-o", "-")
    assert r.exit_code == 0, r.stderr
    wav, sr = sf.read(io.BytesIO(r.stdout_bytes), dtype="float32")
    assert sr == 24000 and len(wav) > 0


def test_batch_mixed_language_rows(cli, mtl, model, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "id,text,language\n"
        'de,"Guten Tag. Wie geht es?",de\n'
        "ja,今日は良い天気です。,\n"
        'ru,"Привет, мир.",ru\n'
        "ru2,Как дела?,ru\n"
        "bad,Hello.,xx\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    r = cli("batch", rows, "-d", out, "-l", "ja", *model, *FAST, "--skip-invalid")
    assert r.exit_code == 0, r.output
    assert "rows.csv:6: unknown language 'xx'" in r.stderr
    assert r.stderr.count("Russian:") == 1  # said once, not per row
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {rec["id"]: (rec["language"], rec["status"]) for rec in records} == {
        "de": ("de", "ok"),
        "ja": ("ja", "ok"),
        "ru": ("ru", "ok"),
        "ru2": ("ru", "ok"),
    }


def test_voice_cache_for_multilingual(cli, mtl, model, reference_wav, voices_dir, tmp_path):
    r = cli("voice", "cache", reference_wav, "-n", "polyglot", *model)
    assert r.exit_code == 0, r.output
    from chatterbox_cli.voices import load_cached

    conds = load_cached(voices_dir / "polyglot.pt", "multilingual")
    assert conds.t3.cond_prompt_speech_tokens.shape[-1] == MTL.prompt_tokens
    out = tmp_path / "v.wav"
    r = cli("say", "Hola. ¿Qué tal?", "-l", "es", "-v", "polyglot", *model, *FAST, "-o", out)
    assert r.exit_code == 0, r.output and out.is_file()


def test_bench_runs_multilingual_against_its_own_generate(cli, mtl, model, tmp_path):
    out = tmp_path / "bench.json"
    r = cli(
        "bench", *model, "-l", "fr", "--text", "Bonjour. Ça va?", "--tokens", "4",
        "--warmup", "0", "--repeats", "1", "--items", "2", "--mode", "upstream",
        "--mode", "simple", "--mode", "batch", "--json", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["env"]["family"] == "multilingual"
    summary = doc["summary"]
    for mode in ("upstream", "simple", "batch"):
        assert summary[mode]["text1"]["speech_tokens"]["median"] == (8 if mode == "batch" else 4)


GUARD = """
import socket, sys
def refuse(*args, **kwargs):
    sys.stderr.write("NETWORK ATTEMPT %r\\n" % (args[1:2] or args[:1],))
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
from chatterbox_cli.cli import app
app()
"""


def test_loading_and_speaking_every_language_but_chinese_touches_no_network(
    multilingual_checkpoint, tmp_path
):
    """A fresh process with every socket refused: load, then speak one row per language."""
    languages = [code for code in MTL.languages if code != "zh"]
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps({"id": c, "text": "Abc. 123.", "language": c}) + "\n" for c in languages)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty hub cache: nothing to fall back on
    args = ["batch", str(rows), "-d", str(tmp_path / "out"), "--model", "multilingual"]
    args += ["--model-dir", str(multilingual_checkpoint), "--cfm-steps", "1"]
    args += ["--max-new-tokens", "2", "--batch-size", "32"]
    proc = subprocess.run(
        [sys.executable, "-c", GUARD, *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "NETWORK ATTEMPT" not in proc.stderr
    manifest = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["language"] for line in manifest) == sorted(languages)
