"""T3's KV cache written in place, and one copy of a voice prefix read by every row.

transformers' `DynamicCache` appends with `torch.cat`, so each step copies every layer's whole
cache (at 16 rows x 450 positions that copy alone cost as much as the step). A `Slab` layer
keeps a buffer that grows by doubling, writes each step's keys and values into it and hands
attention a view of the filled part: no copy, no attention over unused positions.

With a shared `prefix` (a voice's conditioning, ~375 positions for Turbo) a slab of several
rows holds only each row's own suffix (a single row copies the prefix in once instead).
`cascade_attention`, registered as the GPT-2 families' attention, scores every row's queries
against the one prefix copy (one GEMM per head), the suffix per row, and takes one softmax
over both; without a prefix it is transformers' sdpa, unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, CacheLayerMixin
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

CASCADE = "chatterbox_cascade"
GROW = 128
"""Positions a slab starts with past its prefill (then it doubles): a short group never
allocates its whole token cap, a long one copies its cache ~log2(length / GROW) times."""


class Slab(CacheLayerMixin):
    """One layer's cache: `prefix` (1, H, P, D) keys and values shared by reference, then a
    preallocated (B, H, capacity, D) buffer per row, filled in place."""

    is_sliding = False
    is_compileable = False

    def __init__(self, prefix: tuple[torch.Tensor, torch.Tensor] | None = None, reserve: int = 0):
        super().__init__()
        self.prefix = prefix
        self.offset = prefix[0].shape[-2] if prefix is not None else 0
        self.reserve = reserve
        self.length = self.capacity = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        self.is_initialized = True

    def _fit(self, end: int, like: torch.Tensor) -> None:
        if end <= self.capacity:
            return
        size = max(end + self.reserve, 2 * self.capacity)
        b, h, _, d = like.shape
        k, v = like.new_empty(b, h, size, d), like.new_empty(b, h, size, d)
        if self.length:
            k[:, :, : self.length] = self._k[:, :, : self.length]
            v[:, :, : self.length] = self._v[:, :, : self.length]
        self._k, self._v, self.capacity = k, v, size

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, cache_kwargs: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            if self.prefix is not None and key_states.shape[0] == 1:
                self._own_prefix(key_states)
        end = self.length + key_states.shape[-2]
        self._fit(end, key_states)
        self._k[:, :, self.length : end] = key_states
        self._v[:, :, self.length : end] = value_states
        self.length = end
        self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
        if self.prefix is not None:
            self.keys.shared_prefix = self.prefix  # read by cascade_attention, same call
        return self.keys, self.values

    def _own_prefix(self, like: torch.Tensor) -> None:
        """One row gains nothing from sharing (measured: Nano's single stream ran 10% slower
        through the cascade's extra ops): copy the prefix in once and attend with plain sdpa."""
        pk, pv = self.prefix
        self._fit(self.offset + like.shape[-2], like)
        self._k[:, :, : self.offset], self._v[:, :, : self.offset] = pk, pv
        self.length, self.offset, self.prefix = self.offset, 0, None

    def get_seq_length(self) -> int:
        return self.offset + self.length

    def get_mask_sizes(self, cache_position: torch.Tensor) -> tuple[int, int]:
        return self.get_seq_length() + cache_position.shape[0], 0

    def get_max_cache_shape(self) -> int:
        return -1


def cache(tfmr, prefix=None, tokens: int = GROW) -> Cache:
    """An empty in-place cache for one decode of up to `tokens` new tokens a row; with `prefix`
    (a `Prefix`), its rows share it."""
    reserve = min(tokens, GROW)
    layers = prefix.kv if prefix is not None else [None] * tfmr.config.num_hidden_layers
    if prefix is not None:
        use_cascade(tfmr)
    return Cache(layers=[Slab(kv, reserve) for kv in layers])


def use_cascade(tfmr) -> None:
    """Route a GPT-2 T3's attention through `cascade_attention` (sdpa when nothing is shared,
    so upstream's own calls on the same model compute exactly what they did)."""
    if tfmr.config._attn_implementation == "sdpa":
        tfmr.config._attn_implementation = CASCADE


def cascade_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kw):
    shared = getattr(key, "shared_prefix", None)
    if shared is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kw
        )
    pk, pv = shared
    b, h, q, d = query.shape
    p, s = pk.shape[-2], key.shape[-2]
    scale = scaling if scaling is not None else d**-0.5
    heads = query.transpose(0, 1).reshape(h, b * q, d)
    on_prefix = torch.matmul(heads, pk[0].transpose(-1, -2)).view(h, b, q, p).transpose(0, 1)
    scores = torch.cat([on_prefix, torch.matmul(query, key.transpose(-1, -2))], dim=-1) * scale
    if attention_mask is None and q > 1:
        attention_mask = torch.ones(q, p + s, dtype=torch.bool, device=query.device).tril(p + s - q)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, float("-inf"))
        else:
            scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    from_prefix = probs[..., :p].transpose(0, 1).reshape(h, b * q, p)
    out = torch.matmul(from_prefix, pv[0]).view(h, b, q, d).transpose(0, 1)
    out = out + torch.matmul(probs[..., p:], value)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(CASCADE, cascade_attention)
AttentionMaskInterface.register(CASCADE, sdpa_mask)
