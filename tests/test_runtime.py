"""Opt-in runtime flags: int8 (cached on disk), bf16 autocast, 1-step flow, threads.

Deviation bounds come from measurements on this random-weight checkpoint (greedy argmax
agreement and relative logit error vs float32, teacher-forced): int8 T3 87.7% / 4.8% (81
positions); bf16 T3 100% / 0.73% (9 positions, short voice; 95.1% / 0.70% on 81 with the full
voice); bf16 flow mel 0.78%; 1-step flow mel 19.6% (17.9% with the full voice). Random weights
give flat logits with small margins, so agreement on real weights should be higher; the bounds
leave room for other CPUs' kernels (x2-4 on errors) and fail if a path breaks.
"""

import numpy as np
import pytest
import torch

from chatterbox_cli.cli.options import flag
from chatterbox_cli.models.t3.request import Decoding, Row
from chatterbox_cli.runtime.device import Runtime
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.synth.request import RenderOptions


@pytest.fixture(scope="module")
def teacher(engine):
    """fp32 logits for fixed random speech tokens after a text, through a given T3."""
    cond = engine.builtin_voice.t3
    ids = engine.text_tokens("Quantization must keep what is said, and be faster than before.")
    toks = torch.randint(0, 6561, (1, 80), generator=torch.Generator().manual_seed(0))

    def logits(t3, amp=None):
        with torch.inference_mode(), amp or torch.autocast("cpu", enabled=False):
            start = t3.hp.start_speech_token * torch.ones_like(ids[:, :1])
            speech = torch.cat([start, toks], 1)
            emb, _ = t3.prepare_input_embeds(t3_cond=cond, text_tokens=ids, speech_tokens=speech)
            hidden = t3.tfmr(inputs_embeds=emb)[0]
            return t3.speech_head(hidden[:, -speech.shape[1] :]).float()

    return logits, logits(engine.tts.t3)


def deviation(new, ref):
    agree = (new.argmax(-1) == ref.argmax(-1)).float().mean().item()
    return agree, ((new - ref).norm() / ref.norm()).item()


def test_runtime_checks():
    assert Runtime().check("cpu").dtype == "float32"
    assert Runtime(dtype="BFloat16").check("cpu").dtype == "bfloat16"
    for bad, needle in (
        (Runtime(threads=0), "--threads"),
        (Runtime(quantize="int4"), "--quantize"),
        (Runtime(dtype="float16"), "--device cuda"),
        (Runtime(dtype="half"), "--dtype"),
    ):
        with pytest.raises(BadInput, match=needle):
            bad.check("cpu", flag)  # the CLI's spelling; Python's names the field
        with pytest.raises(BadInput, match=needle.replace("--", "")):
            bad.check("cpu")
    with pytest.raises(BadInput, match="CPU"):
        Runtime(quantize="int8").check("cuda")


def test_runtime_flags_fail_before_loading(cli, checkpoint):
    r = cli("say", "Hi.", "--quantize", "int4", "-o", "x.wav")
    assert r.exit_code == 2 and "--quantize must be one of" in r.stderr
    # What depends on the device is checked once the weights are found, still before loading.
    args = ("batch", "-", "-d", "out", "--dtype", "float16", "--model-dir", checkpoint)
    r = cli(*args, input="Hello.\n")
    assert r.exit_code == 2 and "--device cuda" in r.stderr


def test_int8_is_cached_and_bounded(checkpoint, teacher, tmp_path, monkeypatch):
    from chatterbox_cli.models.loading import int8_cache_path
    from chatterbox_cli.models.turbo import T3_FILE, load_t3

    monkeypatch.setenv("CHATTERBOX_CACHE_DIR", str(tmp_path))
    logits, ref = teacher
    fresh = load_t3(checkpoint, "int8")
    cached = int8_cache_path(checkpoint / T3_FILE)
    assert cached.is_file() and cached.parent.parent == tmp_path
    assert not [p for p in cached.parent.iterdir() if p.name.startswith(".")]  # no temp left
    agree, err = deviation(logits(fresh), ref)
    assert agree >= 0.8 and err <= 0.08, (agree, err)
    del fresh
    reloaded = load_t3(checkpoint, "int8")  # from the cache, no quantization
    assert torch.equal(logits(reloaded), logits(load_t3(checkpoint, "int8")))
    assert deviation(logits(reloaded), ref) == pytest.approx((agree, err))


@pytest.fixture(scope="module")
def tiny_voice(engine):
    """The built-in voice cut to 8 prompt tokens: this CPU has no native bf16 (autocast runs
    ~100x slower than fp32 here), so the bf16 path is exercised on a short sequence."""
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.tts_turbo import Conditionals

    voice = engine.builtin_voice
    t3 = T3Cond(
        speaker_emb=voice.t3.speaker_emb,
        cond_prompt_speech_tokens=voice.t3.cond_prompt_speech_tokens[:, :8],
        emotion_adv=voice.t3.emotion_adv,
    )
    gen = dict(voice.gen)
    gen["prompt_token"] = gen["prompt_token"][:, :8]
    gen["prompt_token_len"] = torch.tensor([8])
    gen["prompt_feat"] = gen["prompt_feat"][:, :16]
    return Conditionals(t3, gen)


def test_bf16_autocast_t3_and_flow_on_cpu(engine, tiny_voice, monkeypatch):
    from chatterbox_cli.models.s3gen import stream as ss
    from chatterbox_cli.text.segment import TextGroup

    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    t3 = engine.tts.t3
    ids = engine.text_tokens("Brain float.")
    speech = torch.randint(0, 6561, (1, 8), generator=torch.Generator().manual_seed(0))
    speech = torch.cat([t3.hp.start_speech_token * torch.ones_like(ids[:, :1]), speech], 1)

    def logits(amp):
        with torch.inference_mode(), amp:
            emb, _ = t3.prepare_input_embeds(
                t3_cond=tiny_voice.t3, text_tokens=ids, speech_tokens=speech
            )
            return t3.speech_head(t3.tfmr(inputs_embeds=emb)[0][:, -9:]).float()

    agree, err = deviation(logits(bf16()), logits(torch.autocast("cpu", enabled=False)))
    assert agree >= 0.7 and err <= 0.03, (agree, err)

    s3gen, voice = engine.tts.s3gen, tiny_voice.gen
    noise = ss.GroupNoise.draw(s3gen, ss.prompt_frames(voice), 20, torch.Generator().manual_seed(1))
    tokens = torch.randint(0, 6561, (12,), generator=torch.Generator().manual_seed(2)).tolist()
    with torch.inference_mode():
        full = ss.flow_window(s3gen, voice, noise, tokens, 0, 2, True)
        half = ss.flow_window(s3gen, voice, noise, tokens, 0, 2, True, bf16)
        one_step = ss.flow_window(s3gen, voice, noise, tokens, 0, 1, True)
    rel = lambda a, b: ((a - b).norm() / b.norm()).item()  # noqa: E731
    assert rel(half, full) <= 0.03
    assert 0 < rel(one_step, full) <= 0.4

    monkeypatch.setattr(engine, "dtype", "bfloat16")
    monkeypatch.setattr(engine, "prefixes", None)  # a prefix made in float32 is not reused
    group = [TextGroup(0, "Brain float.", 0)]
    (chunk,) = engine.synthesize(group, tiny_voice, RenderOptions(max_new_tokens=4, seed=1))
    assert chunk.audio.dtype == np.float32 and np.isfinite(chunk.audio).all()
    assert len(chunk.audio) == (4 + 3) * 960  # HiFiGAN ran in float32 on bf16-made mels


@pytest.mark.parametrize("with_prefix", [False, True], ids=["full-prefill", "prefix-cache"])
def test_static_cache_decodes_the_same_tokens(engine, with_prefix):
    """`--fast-decode`'s static KV cache (CUDA graphs come on top of it on CUDA only) must not
    change what is decoded: greedy tokens equal the dynamic cache's, twice in a row (the cache
    is reused and reset between groups)."""
    from chatterbox_cli.models.sampling import SamplingParams
    from chatterbox_cli.models.t3.decode import FastStep, decode
    from chatterbox_cli.models.t3.prefix import Prefix

    t3, cond = engine.tts.t3, engine.builtin_voice.t3
    greedy = SamplingParams(top_k=1)
    prefix = Prefix.build(t3, cond) if with_prefix else None
    fast = FastStep(t3, max_len=512)
    for text in ("A static cache must not change the tokens.", "Nor on the second use."):
        ids = engine.text_tokens(text)
        dynamic = [
            int(t[0]) for t in decode(t3, Row(cond, ids, greedy, 16), Decoding(prefix=prefix))
        ]
        static = [
            int(t[0])
            for t in decode(t3, Row(cond, ids, greedy, 16), Decoding(prefix=prefix, fast=fast))
        ]
        assert static == dynamic
    assert not fast.fits(513, 1) and not fast.fits(10, 2)


def test_seeded_leaves_the_process_rngs_as_they_were():
    """A seeded row (the server renders many tenants' rows) draws as after `seed_everything`
    and then hands every RNG back as it found it."""
    import random

    import torch

    from chatterbox_cli.runtime.device import seed_everything, seeded

    seed_everything(5)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(5)
    with seeded(11):
        inside = torch.rand(1).item()
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    assert after == expected
    seed_everything(11)
    assert inside == torch.rand(1).item()
    with seeded(None):
        assert torch.rand(1).item() != inside  # None seeds nothing


def test_engines_share_weights_but_keep_their_own_settings(engine, checkpoint):
    """A second engine of the same weights reuses them and never rewrites the settings of an
    engine someone else holds (the old process-wide cache did)."""
    from chatterbox_cli.models.source import ModelSource
    from chatterbox_cli.synth.loader import load_engine

    other = load_engine(ModelSource("turbo", checkpoint), "cpu", Runtime(dtype="bfloat16"))
    assert other.tts is engine.tts and other is not engine
    assert other.dtype == "bfloat16" and engine.dtype == "float32"


def test_prefix_cache_is_keyed_by_voice_and_bounded_by_memory(engine, tiny_voice):
    from chatterbox.tts_turbo import Conditionals

    from chatterbox_cli.models.t3.prefix import PrefixCache

    t3 = engine.tts.t3
    cache = PrefixCache()
    first = cache.get(t3, tiny_voice.t3, engine.amp)
    again = Conditionals(type(tiny_voice.t3)(**vars(tiny_voice.t3)), tiny_voice.gen)
    assert cache.get(t3, again.t3, engine.amp) is first  # the same voice in another object
    louder = type(tiny_voice.t3)(**{**vars(tiny_voice.t3)})
    louder.speaker_emb = tiny_voice.t3.speaker_emb * 2
    second = cache.get(t3, louder, engine.amp)
    assert second is not first and len(cache.entries) == 2
    small = PrefixCache(budget_mb=1.5 * first.nbytes / 2**20)
    small.get(t3, tiny_voice.t3, engine.amp)
    small.get(t3, louder, engine.amp)
    assert len(small.entries) == 1 and small.nbytes <= small.budget  # the older voice went
    assert small.get(t3, louder, engine.amp) is next(iter(small.entries.values()))
