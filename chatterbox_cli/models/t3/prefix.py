"""GPT-2's KV cache over a voice's conditioning, computed once per voice and shared by every
group (and every batch row) of that voice; `PrefixCache` keeps them per voice, within a memory
budget."""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Amp = Callable[[], contextlib.AbstractContextManager]
"""Makes the autocast context for one forward call (nullcontext in float32)."""
PREFIX_CACHE_MB = 512
"""What a process keeps of voice prefixes (fp32, a 15 s prompt: Turbo ~72 MB a voice, Nano ~27): the
server's voices stay warm, and memory stays bounded however many voices it is sent."""


@dataclass
class Prefix:
    """GPT-2's KV cache over one voice's conditioning (speaker + ~375 prompt speech tokens):
    the same for every group of that voice, so computed once instead of once per group."""

    cond: Any
    cache: Any
    length: int

    @classmethod
    @torch.inference_mode()
    def build(cls, t3, t3_cond, amp: Amp = contextlib.nullcontext) -> Prefix:
        cond_emb = t3.prepare_conditioning(t3_cond)
        with amp():
            out = t3.tfmr(inputs_embeds=cond_emb, use_cache=True)
        return cls(t3_cond, out.past_key_values, cond_emb.shape[1])

    @property
    def kv(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's (keys, values), (1, H, length, D): what every row's decode reads."""
        return [(layer.keys, layer.values) for layer in self.cache.layers]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for kv in self.kv for t in kv)


def voice_key(t3_cond) -> str:
    """A voice by what it is (speaker embedding, prompt tokens, emotion), not by which object
    holds it: a voice loaded twice shares one prefix, and a freed object's id reused by
    another voice can never fetch the wrong one."""
    digest = hashlib.sha1()
    for name in ("speaker_emb", "cond_prompt_speech_tokens", "emotion_adv"):
        value = getattr(t3_cond, name, None)
        if isinstance(value, torch.Tensor):
            digest.update(name.encode())
            digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


class PrefixCache:
    """Voice prefixes by `voice_key`, least recently used evicted past `budget_mb`."""

    def __init__(self, budget_mb: float = PREFIX_CACHE_MB):
        self.budget = budget_mb * 1024 * 1024
        self.entries: OrderedDict[str, Prefix] = OrderedDict()

    def get(self, t3, t3_cond, amp: Amp) -> Prefix:
        key = voice_key(t3_cond)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        prefix = Prefix.build(t3, t3_cond, amp)
        self.entries[key] = prefix
        while len(self.entries) > 1 and self.nbytes > self.budget:
            self.entries.popitem(last=False)
        return prefix

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.entries.values())
