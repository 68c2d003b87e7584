"""The lean loader: every tensor of the checkpoint lands in the upstream modules unchanged."""

import pytest
import torch
from safetensors import safe_open

FILES = {"t3": "t3_turbo_v1", "s3gen": "s3gen_meanflow", "ve": "ve"}


@pytest.mark.parametrize("part", list(FILES))
def test_every_checkpoint_tensor_is_loaded_exactly(engine, checkpoint, part):
    module = getattr(engine.tts, part)
    state = module.state_dict()
    dropped = {"tfmr.wte.weight", "text_head.weight"}  # unused at inference (see models/loading.py)
    with safe_open(checkpoint / f"{FILES[part]}.safetensors", "pt") as f:
        keys = set(f.keys())
        assert set(state) == keys - (dropped if part == "t3" else set())
        for key in state:
            assert torch.equal(state[key], f.get_tensor(key)), key
    assert not any(t.is_meta for t in (*module.parameters(), *module.buffers()))
    assert not module.training


def test_builtin_voice_and_tokenizer_as_upstream(engine, checkpoint):
    from chatterbox.tts_turbo import Conditionals

    conds = Conditionals.load(checkpoint / "conds.pt", map_location="cpu")
    assert torch.equal(engine.builtin_voice.t3.speaker_emb, conds.t3.speaker_emb)
    assert torch.equal(engine.builtin_voice.gen["prompt_feat"], conds.gen["prompt_feat"])
    assert len(engine.tts.tokenizer) == 50276
    assert engine.tts.tokenizer.pad_token is not None


def test_assigned_weights_keep_the_module_dtype_as_a_copy_would():
    """`assign=True` would keep a half-precision file's dtype; upstream's copying load casts to
    the module's float32, and so must we."""
    from chatterbox_cli.models.loading import as_module_dtypes

    with torch.device("meta"):
        layer = torch.nn.Linear(4, 3)
    state = {"weight": torch.ones(3, 4, dtype=torch.float16), "bias": torch.zeros(3)}
    layer.load_state_dict(as_module_dtypes(layer, state), assign=True)
    assert layer.weight.dtype == layer.bias.dtype == torch.float32
    assert torch.equal(layer.weight, torch.ones(3, 4))


def test_a_clip_voice_leaves_the_speech_tokenizer_mapped_afresh(engine, checkpoint, reference_wav):
    """After a voice is prepared from a clip, the speech tokenizer's tensors come from a new
    mapping of the S3Gen file (its paged-in memory goes back), still exactly the file's, and a
    second preparation gives the same voice."""
    tokenizer = engine.tts.s3gen.tokenizer
    before = {k: v.untyped_storage().data_ptr() for k, v in tokenizer.state_dict().items()}
    first = engine.prepare_reference(reference_wav)
    after = tokenizer.state_dict()
    assert all(after[k].untyped_storage().data_ptr() != ptr for k, ptr in before.items())
    with safe_open(checkpoint / "s3gen_meanflow.safetensors", "pt") as f:
        for key, value in after.items():
            assert torch.equal(value, f.get_tensor(f"tokenizer.{key}")), key
    second = engine.prepare_reference(reference_wav)
    assert torch.equal(first.t3.cond_prompt_speech_tokens, second.t3.cond_prompt_speech_tokens)
    assert torch.equal(first.gen["prompt_feat"], second.gen["prompt_feat"])


def test_our_constants_are_upstreams():
    """Kept here so the CLI can check flags without importing upstream (torch)."""
    from chatterbox.models.s3gen.const import S3GEN_SR
    from chatterbox.models.s3tokenizer import S3_TOKEN_RATE, SPEECH_VOCAB_SIZE

    from chatterbox_cli.models.base import SAMPLES_PER_TOKEN, SPEECH_VOCAB

    assert SPEECH_VOCAB == SPEECH_VOCAB_SIZE
    assert SAMPLES_PER_TOKEN == S3GEN_SR // S3_TOKEN_RATE
