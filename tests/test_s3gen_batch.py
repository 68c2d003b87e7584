"""Batched S3Gen (flow + HiFiGAN over rows of different voices and lengths) = each row alone.

Tolerances: the rows differ from upstream's batch-of-one run only by the float order of matmuls
of other shapes. Measured here: mel <= 5e-6, waveform <= 2e-7 (peaks ~0.1, so -115 dB); the
asserts allow 10x. Before the padding was masked at the encoder's lookahead and in every
HiFiGAN convolution, shorter rows were off by up to 0.03 (mel) near their ends.
"""

import numpy as np
import pytest
import torch

from chatterbox_cli.models.s3gen.batch import Row, flow_rows, vocode_rows
from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.synth.batched import Job, synthesize_batch
from chatterbox_cli.text.segment import TextGroup

MEL_ATOL = 5e-5
WAV_ATOL = 2e-6


def upstream_alone(engine, row: Row):
    """Upstream's S3Gen for one row, as `generate()` runs it after `torch.manual_seed`."""
    s3gen = engine.tts.s3gen
    steps = engine.family.cfm_steps
    with torch.inference_mode():
        torch.manual_seed(row.seed)
        mel = s3gen.flow_inference(
            row.tokens, ref_dict=row.ref, n_cfm_timesteps=steps, finalize=True
        )
        wav, _ = s3gen.hift_inference(mel.to(s3gen.dtype), None)
        wav = wav.clone()
        wav[:, : len(s3gen.trim_fade)] *= s3gen.trim_fade
    return mel[0], wav


def random_rows(engine, voices, lengths, seed0=100):
    g = torch.Generator().manual_seed(seed0)
    return [
        Row(torch.randint(0, 6561, (n,), generator=g), voice.gen, seed=seed0 + i)
        for i, (n, voice) in enumerate(zip(lengths, voices, strict=True))
    ]


def assert_rows_equal_alone(engine, rows):
    steps = engine.family.cfm_steps
    mels, gens = flow_rows(engine.tts.s3gen, rows, steps)
    wavs = vocode_rows(engine.tts.s3gen, mels, gens)
    for row, mel, wav in zip(rows, mels, wavs, strict=True):
        alone_mel, alone_wav = upstream_alone(engine, row)
        assert mel.shape == alone_mel.shape and wav.shape == alone_wav.shape
        torch.testing.assert_close(mel, alone_mel, rtol=0, atol=MEL_ATOL)
        torch.testing.assert_close(wav, alone_wav, rtol=0, atol=WAV_ATOL)
        assert wav.abs().max() > 100 * WAV_ATOL  # real audio, not silence
    return wavs


@pytest.fixture(scope="module")
def other_voice(engine, reference_wav):
    return engine.prepare_reference(reference_wav)


def test_rows_of_two_voices_and_three_lengths_equal_upstream_alone(engine, other_voice):
    """The harmonic source (random) and the trim fade included: the row's seed drives both."""
    builtin = engine.builtin_voice
    rows = random_rows(engine, [builtin, other_voice, builtin], [40, 13, 27])
    assert_rows_equal_alone(engine, rows)


def test_seeded_row_does_not_depend_on_its_batch(engine, other_voice):
    builtin = engine.builtin_voice
    watched = random_rows(engine, [builtin], [21], seed0=7)[0]
    crowd = random_rows(engine, [other_voice, builtin, other_voice], [35, 9, 50], seed0=300)
    first = vocode_rows(engine.tts.s3gen, *flow_rows(engine.tts.s3gen, [watched, crowd[0]], 2))
    second = vocode_rows(engine.tts.s3gen, *flow_rows(engine.tts.s3gen, [*crowd[1:], watched], 2))
    torch.testing.assert_close(first[0], second[-1], rtol=0, atol=WAV_ATOL)
    assert not torch.equal(first[1][:, :1000], second[0][:, :1000])


def test_batch_jobs_render_the_same_with_and_without_batched_s3gen(engine, other_voice):
    """What CUDA runs by default (`--batch-s3gen`) gives seeded jobs what CPU's default gives."""
    params = SamplingParams()
    texts = ["One row here.", "A second, longer row of text for padding.", "Three."]
    voices = [engine.builtin_voice, other_voice, engine.builtin_voice]
    jobs = [
        Job(TextGroup(0, t, 0), v, params, 6 + 3 * i, seed=50 + i)
        for i, (t, v) in enumerate(zip(texts, voices, strict=True))
    ]
    saved = engine.batch_s3gen
    try:
        engine.batch_s3gen = False
        rowwise = synthesize_batch(engine, jobs)
        engine.batch_s3gen = True
        batched = synthesize_batch(engine, jobs)
    finally:
        engine.batch_s3gen = saved
    for a, b in zip(rowwise, batched, strict=True):
        assert a.speech_tokens == b.speech_tokens and a.stopped == b.stopped
        np.testing.assert_allclose(a.audio, b.audio, rtol=0, atol=WAV_ATOL)
        assert b.flow_s > 0 and b.hifigan_s > 0
