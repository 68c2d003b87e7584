"""Multilingual V2 (`--model multilingual-v2`, 0.1.7's model as it was) on the random-weight
multilingual checkpoint: exactness against upstream `ChatterboxMultilingualTTS.generate()`
(alignment analyzer included), the analyzer's hooks and stops, batching with it, the CLI.

conftest.py runs this module after the other families and before V3's: one family at a time."""

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
from upstream_parity import upstream_capped

from chatterbox_cli.models import get
from chatterbox_cli.models.t3.align import hook_count
from chatterbox_cli.models.t3.request import Decoding, Row
from chatterbox_cli.synth.request import RenderOptions
from chatterbox_cli.text.segment import TextGroup

MTL = get("multilingual-v2")
FAST = ("--cfm-steps", "2", "--max-new-tokens", "6")


@pytest.fixture(scope="module")
def mtl(multilingual_checkpoint):
    from chatterbox_cli.models.source import ModelSource
    from chatterbox_cli.synth.loader import load_engine

    return load_engine(ModelSource("multilingual-v2", multilingual_checkpoint), "cpu")


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
    sampled, upstream_wav = upstream_capped(mtl, monkeypatch, text, language, params, cap, seed)
    assert hook_count(mtl.tts.t3.tfmr) == 0  # what upstream's analyzer hooked is gone
    assert not mtl.tts.t3.tfmr.config.output_attentions

    group = TextGroup(0, text, 0, language)
    (chunk,) = mtl.synthesize([group], mtl.builtin_voice, RenderOptions(params, cap, seed))
    assert hook_count(mtl.tts.t3.tfmr) == 0
    assert len(sampled) == cap  # neither stopped early here
    assert chunk.speech_tokens == MTL.speech_tokens(sampled) == sampled
    assert chunk.audio.shape == upstream_wav.shape
    np.testing.assert_array_equal(chunk.audio, upstream_wav)


def test_upstream_hooks_pile_up_and_ours_do_not(mtl, monkeypatch):
    from chatterbox_cli.models.t3.align import removing_new_hooks

    tts = mtl.tts
    monkeypatch.setattr(tts, "conds", copy.copy(mtl.builtin_voice))
    ids = mtl.text_tokens("Hallo.", "de")
    with removing_new_hooks(tts.t3.tfmr):
        for calls in (1, 2):
            tts.t3.inference(t3_cond=tts.conds.t3, text_tokens=ids.expand(2, -1), max_new_tokens=1)
            assert hook_count(tts.t3.tfmr) == 3 * calls
    assert hook_count(tts.t3.tfmr) == 0
    from chatterbox_cli.models.t3.cfg import decode

    for _ in range(2):
        assert (
            len(
                list(
                    decode(tts.t3, Row(tts.conds.t3, ids, MTL.defaults, 2), Decoding(), align=True)
                )
            )
            == 2
        )
        assert hook_count(tts.t3.tfmr) == 0


def test_the_analyzer_forces_a_stop_after_a_repeated_token(mtl):
    """With the repetition penalty off and greedy choice, the per-row analyzer ends a row whose
    last two tokens are equal, as upstream's does; without it the row runs to the cap."""
    from chatterbox_cli.models.t3.cfg import decode

    t3, cond = mtl.tts.t3, mtl.builtin_voice.t3
    ids = mtl.text_tokens("Dies ist ein etwas längerer Satz, der nicht enden soll.", "de")
    greedy = replace(MTL.defaults, min_p=1.0, repetition_penalty=1.0, cfg_weight=0.0)
    free = [int(t) for t in decode(t3, Row(cond, ids, greedy, 40))]
    repeat = next((i for i in range(1, len(free)) if free[i] == free[i - 1]), None)
    if repeat is None:
        pytest.skip("this checkpoint never repeats a token greedily")
    aligned = [int(t) for t in decode(t3, Row(cond, ids, greedy, 40), Decoding(), align=True)]
    assert aligned == free[: repeat + 1]


def test_batched_greedy_equals_unbatched_and_seeded_rows_are_independent(mtl):
    from chatterbox_cli.models.t3.cfg import decode, decode_batch
    from chatterbox_cli.models.t3.request import Row

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
    batched = decode_batch(t3, rows, Decoding(), align=True)
    for row, got in zip(rows, batched, strict=True):
        alone = decode(t3, Row(cond, row.text_tokens, row.params, 8), Decoding(), align=True)
        assert got == [int(t) for t in alone]
    assert hook_count(t3.tfmr) == 0

    def row(text, lang, seed):
        gen = torch.Generator().manual_seed(seed)
        return Row(cond, mtl.text_tokens(text, lang), MTL.defaults, 8, gen)

    alone = decode_batch(t3, [row("Kurz.", "de", 5)], Decoding(), align=True)
    together = decode_batch(
        t3, [row("Un texte plus long.", "fr", 6), row("Kurz.", "de", 5)], Decoding(), align=True
    )
    assert together[1] == alone[0] and together[0] != alone[0]


def test_v2_is_reachable_and_says_which_t3_spoke(cli, mtl, multilingual_checkpoint, tmp_path):
    out = tmp_path / "v2.wav"
    model = ("--model", "multilingual-v2", "--model-dir", multilingual_checkpoint)
    r = cli("say", "Hallo. Wie geht's?", "-l", "de", *model, *FAST, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["model"] == "multilingual-v2"
    assert report["t3_file"] == "t3_mtl23ls_v2.safetensors"
    assert report["provenance"]["t3_file"] == "t3_mtl23ls_v2.safetensors"
    wav, sr = sf.read(out, dtype="float32")
    assert len(wav) / sr == pytest.approx(report["audio_s"], abs=0.01)
    assert mtl.tts.t3.tfmr.config._attn_implementation == "eager"  # the analyzer reads weights
