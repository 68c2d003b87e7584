"""The in-place KV cache and the shared prefix (`models/t3/kv.py`) against transformers' own
DynamicCache, on small real GPT-2 and Llama models with random weights (same code paths as
T3's backbones; the families' tests repeat this on full-size checkpoints and upstream)."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache, GPT2Config, GPT2Model, LlamaConfig, LlamaModel

from chatterbox_cli.models.t3 import kv
from chatterbox_cli.models.t3.prefix import Prefix


def gpt2():
    torch.manual_seed(0)
    config = GPT2Config(n_embd=64, n_layer=3, n_head=4, n_positions=256, vocab_size=11)
    config._attn_implementation = "sdpa"
    return GPT2Model(config).eval()


def llama():
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=11,
    )
    config._attn_implementation = "sdpa"
    return LlamaModel(config).eval()


def run(model, x, mask, steps, past, skip=0):
    """Prefill `x[:, skip:]`, then `steps` one-position steps fed the last hidden state's first
    features (deterministic, data-dependent): every step's last hidden states."""
    b, width = x.shape[0], x.shape[1]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        inputs_embeds=x[:, skip:],
        attention_mask=mask,
        position_ids=positions[:, skip:],
        past_key_values=past,
        use_cache=True,
    )
    hidden, past = [out[0][:, -1]], out.past_key_values
    position = positions[:, -1:]
    for _ in range(steps):
        mask = torch.cat([mask, mask.new_ones(b, 1)], dim=1)
        position = position + 1
        feed = torch.tanh(hidden[-1]).unsqueeze(1)
        out = model(
            inputs_embeds=feed,
            attention_mask=mask,
            position_ids=position,
            past_key_values=past,
            use_cache=True,
        )
        hidden.append(out[0][:, -1])
    assert width == x.shape[1]
    return torch.stack(hidden, dim=1)


def padded_batch(prefix_len: int, lengths: list[int], dim: int = 64):
    """Rows of [shared prefix, left pads, own text]: the layout of a batched T3 decode."""
    g = torch.Generator().manual_seed(1)
    shared = torch.randn(1, prefix_len, dim, generator=g)
    width = max(lengths)
    x = torch.zeros(len(lengths), prefix_len + width, dim)
    mask = torch.zeros(len(lengths), prefix_len + width, dtype=torch.long)
    x[:, :prefix_len], mask[:, :prefix_len] = shared, 1
    for i, n in enumerate(lengths):
        x[i, prefix_len + width - n :] = torch.randn(n, dim, generator=g)
        mask[i, prefix_len + width - n :] = 1
    return x, mask, shared


@pytest.mark.parametrize("make", [gpt2, llama], ids=["gpt2", "llama"])
@torch.inference_mode()
def test_in_place_cache_equals_dynamic_cache_and_grows(make):
    model = make()
    x, mask, _ = padded_batch(0, [5, 9, 2])
    expected = run(model, x, mask, 12, DynamicCache(config=model.config))
    past = kv.cache(model, tokens=3)  # 9 + 3 positions, then doubling: two regrowths
    got = run(model, x, mask, 12, past)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert past.get_seq_length() == 9 + 12
    assert past.layers[0]._k.shape[-2] == 24  # 12, then 24: doubled, not grown per step


@torch.inference_mode()
def test_steps_write_in_place_without_copying_the_cache():
    model = gpt2()
    x, mask, _ = padded_batch(0, [4, 6])
    past = kv.cache(model, tokens=8)
    run(model, x, mask, 1, past)
    buffers = [layer._k.data_ptr() for layer in past.layers]
    run_more = model(
        inputs_embeds=torch.zeros(2, 1, 64),
        attention_mask=torch.ones(2, 8, dtype=torch.long),
        past_key_values=past,
        use_cache=True,
    )
    assert run_more[0].shape == (2, 1, 64)
    assert [layer._k.data_ptr() for layer in past.layers] == buffers
    assert all(layer.keys.data_ptr() == layer._k.data_ptr() for layer in past.layers)


@pytest.mark.parametrize("lengths", [[7], [3, 8, 1, 5]], ids=["one-row", "padded-rows"])
@torch.inference_mode()
def test_a_shared_prefix_read_once_equals_every_row_holding_its_own_copy(lengths):
    """Cascade attention: one softmax over [prefix, own suffix], the prefix scored in one GEMM
    for every row; equal to each row carrying the whole prefix in a DynamicCache."""
    model = gpt2()
    x, mask, shared = padded_batch(6, lengths)
    expected = run(model, x, mask, 10, DynamicCache(config=model.config))
    prefix = Prefix(None, model(inputs_embeds=shared, use_cache=True).past_key_values, 6)
    before = [k.clone() for k, _ in prefix.kv]
    past = kv.cache(model, prefix, tokens=4)
    got = run(model, x, mask, 10, past, skip=6)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert model.config._attn_implementation == kv.CASCADE
    layer = past.layers[0]
    assert layer._k.shape[0] == len(lengths)
    if len(lengths) == 1:  # one row holds its own copy, read by plain sdpa
        assert layer.offset == 0 and layer.prefix is None and layer.length == past.get_seq_length()
    else:
        assert layer.offset == 6 and layer.prefix is not None
    for (k, _), old in zip(prefix.kv, before, strict=True):
        assert torch.equal(k, old) and k.shape[0] == 1  # shared, never grown nor repeated


@torch.inference_mode()
def test_without_a_prefix_the_cascade_is_transformers_sdpa_bit_for_bit():
    """Upstream's own calls on a model routed through the cascade compute what they did."""
    model = gpt2()
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    before = model(input_ids=ids)[0]
    kv.use_cascade(model)
    assert model.config._attn_implementation == kv.CASCADE
    assert torch.equal(model(input_ids=ids)[0], before)
