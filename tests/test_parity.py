"""Our decode loop + S3Gen call must equal upstream `ChatterboxTurboTTS.generate()` exactly."""

import numpy as np
import pytest
from upstream_parity import (
    FIRST_STOP_BIAS,
    PARAMS,
    STOP,
    STOP_BIAS,
    assert_equals_upstream,
    stop_bias,
)

from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.models.t3.decode import decode
from chatterbox_cli.models.t3.request import Decoding, Row
from chatterbox_cli.synth.request import RenderOptions
from chatterbox_cli.text.segment import TextGroup


@pytest.mark.parametrize("params", PARAMS.values(), ids=list(PARAMS))
def test_tokens_and_waveform_equal_upstream(engine, monkeypatch, params):
    tokens, stopped = assert_equals_upstream(engine, monkeypatch, params, cap=12)
    assert len(tokens) == 12 and not stopped  # random weights never stopped early here


def test_the_stop_path_equals_upstream(engine, monkeypatch):
    """With the stop token's bias raised, T3 stops on its own: both loops stop at the same step
    and S3Gen renders the same tokens."""
    with stop_bias(engine.tts.t3, STOP_BIAS):
        tokens, stopped = assert_equals_upstream(engine, monkeypatch, SamplingParams(), cap=60)
    assert stopped and 2 <= len(tokens) < 59


def test_a_stop_as_the_first_sample_goes_on_as_upstream(engine, monkeypatch):
    """Upstream checks for the stop token from its second sample on; a loop that stopped at the
    first drew fewer samples, so S3Gen's noise (the same global RNG) differed (found by this
    test). Batched decoding keeps the same rule."""
    from chatterbox_cli.models.t3.decode import decode_batch
    from chatterbox_cli.models.t3.request import Row

    with stop_bias(engine.tts.t3, FIRST_STOP_BIAS):
        tokens, stopped = assert_equals_upstream(engine, monkeypatch, SamplingParams(), cap=60)
        assert stopped and len(tokens) < 5
        cond, ids = engine.builtin_voice.t3, engine.text_tokens("A first stop.")
        alone = [
            int(t[0]) for t in decode(engine.tts.t3, Row(cond, ids, SamplingParams(top_k=1), 20))
        ]
        (batched,) = decode_batch(engine.tts.t3, [Row(cond, ids, SamplingParams(top_k=1), 20)])
    assert alone[0] == STOP and batched == alone  # greedy: the first sample is the stop token


def test_same_seed_same_audio_other_seed_differs(engine):
    group = [TextGroup(0, "Seeds make runs reproducible.", 0)]
    run = lambda seed: next(  # noqa: E731
        engine.synthesize(group, engine.builtin_voice, RenderOptions(max_new_tokens=8, seed=seed))
    )
    a, b, c = run(7), run(7), run(8)
    assert a.speech_tokens == b.speech_tokens
    np.testing.assert_array_equal(a.audio, b.audio)
    assert a.speech_tokens != c.speech_tokens


def test_token_cap_bounds_every_group(engine):
    groups = [TextGroup(0, "One group.", 0), TextGroup(1, "Another group here.", 0)]
    chunks = list(
        engine.synthesize(groups, engine.builtin_voice, RenderOptions(max_new_tokens=5, seed=0))
    )
    assert [len(c.speech_tokens) for c in chunks] == [5, 5]
    assert all(not c.stopped for c in chunks)
    # 5 tokens + 3 silence tokens at 25 tokens/s, 24 kHz (S3Gen makes 2 mel frames per token)
    assert all(abs(c.duration_s - 8 / 25) < 0.05 for c in chunks)


def test_prefix_cache_gives_the_same_tokens(engine):
    """The per-voice KV cache changes only float rounding: greedy tokens are identical and the
    first logits agree to 1e-4 (measured max difference: see the assertion's message)."""
    from chatterbox_cli.models.t3.decode import decode
    from chatterbox_cli.models.t3.prefix import Prefix

    t3, cond = engine.tts.t3, engine.builtin_voice.t3
    greedy = SamplingParams(top_k=1)
    ids = engine.text_tokens("A prefix cache must not change what is said.")
    prefix = Prefix.build(t3, cond)
    plain = [int(t[0]) for t in decode(t3, Row(cond, ids, greedy, 20))]
    cached = [int(t[0]) for t in decode(t3, Row(cond, ids, greedy, 20), Decoding(prefix=prefix))]
    assert cached == plain
    again = [int(t[0]) for t in decode(t3, Row(cond, ids, greedy, 20), Decoding(prefix=prefix))]
    assert again == plain  # the shared cache was not grown by the first use


def test_overlapped_t3_gives_the_same_audio_as_sequential_with_its_own_rng(engine, monkeypatch):
    """With overlap, T3 runs in a thread on its own generator: seeded runs are reproducible and
    equal to a sequential run that uses the same generator arrangement."""
    groups = [TextGroup(0, "First group here.", 0), TextGroup(1, "And a second one.", 0)]

    def run():
        voice = engine.builtin_voice
        return list(
            engine.synthesize(groups, voice, RenderOptions(max_new_tokens=6, seed=11), overlap=True)
        )

    overlapped, again = run(), run()
    import chatterbox_cli.synth.engine as eng

    monkeypatch.setattr(eng, "prefetch", lambda items, **_: items)  # same RNGs, one thread
    sequential = run()
    for a, b, c in zip(overlapped, again, sequential, strict=True):
        assert a.speech_tokens == b.speech_tokens == c.speech_tokens
        np.testing.assert_array_equal(a.audio, b.audio)
        np.testing.assert_array_equal(a.audio, c.audio)
