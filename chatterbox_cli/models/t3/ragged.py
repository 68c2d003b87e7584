"""Flash's torch engine for rows of different prefix lengths, made exact.

`chatterbox_flash`'s `TorchSDPAEngine` lays a ragged batch out as one cache: every row's prefix
padded to the longest (`lp_max`), then each block appended at the same place for all rows. Its
block forward masks keys `[cs_i, cs_max)` of row i, which is that row's padding only in the first
block: from the second on, it hides the row's own earlier blocks and shows it its padding, so a
row in a batch decodes differently from the same row alone (tests/test_flash.py shows it). Here
row i's mask is its padding `[lp_i, lp_max)` in every block; positions and the rest are
upstream's. Only the ragged block forward differs; FlashInfer's paged cache needs no fix.
"""

from __future__ import annotations

from chatterbox_flash.engines.torch_sdpa import TorchSDPAEngine, _crop_dynamic_cache

UNBOUNDED = 1 << 30
"""The torch engine reads `max_seq_len` only in `can_reuse`: ours fits any request."""


class RaggedSDPAEngine(TorchSDPAEngine):
    def block_forward(self, block_emb, cache_starts):
        if isinstance(cache_starts, int) or len(set(cache_starts)) == 1:
            return super().block_forward(block_emb, cache_starts)
        import torch

        rows, width = block_emb.size(0), block_emb.size(1)
        device, dtype = self._device, self._dtype
        starts = list(cache_starts)
        end = max(starts)
        longest = max(self._prefix_lens)
        _crop_dynamic_cache(self._dc, end)
        positions = torch.stack([torch.arange(s, s + width, device=device) for s in starts])
        mask = torch.zeros(rows, 1, width, end + width, dtype=dtype, device=device)
        for row, prefix in enumerate(self._prefix_lens):
            mask[row, 0, :, prefix:longest] = float("-inf")
        config = self._model.tfmr.config
        kept = getattr(config, "_attn_implementation", "sdpa")
        config._attn_implementation = "sdpa"
        try:
            out = self._model.tfmr(
                input_ids=None,
                inputs_embeds=block_emb.to(dtype),
                position_ids=positions,
                past_key_values=self._dc,
                use_cache=True,
                return_dict=True,
                attention_mask=mask,
            )
        finally:
            config._attn_implementation = kept
        self._dc = out.past_key_values
        return out.last_hidden_state


def install(t3, rows: int, backend: str = "auto") -> None:
    """Have `t3.generate()` use our engine for `rows` forward rows when it would pick the torch
    one (it reuses a cached engine that `can_reuse` the request)."""
    from chatterbox_flash.engines import _resolve_backend

    if _resolve_backend(backend) != "torch":
        return
    cached = getattr(t3, "_cached_engine", None)
    if isinstance(cached, RaggedSDPAEngine) and cached.batch_size == rows:
        return
    dtype = next(t3.parameters()).dtype
    t3._cached_engine = RaggedSDPAEngine(t3, UNBOUNDED, dtype, batch_size=rows)
