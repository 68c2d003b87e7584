"""Multilingual's stop-token control: upstream's `AlignmentStreamAnalyzer`, one per decoded row,
fed by hooks of our own that we remove again.

Upstream builds an analyzer per `generate()` call; its constructor hooks three attention heads
(which keep only batch row 0) and never removes them, so they pile up call after call. Here the
analyzer's constructor hooks are taken off at once, one `AttentionSpy` per decode keeps those
heads for every row, and each row's analyzer sees its own row with the left padding cut away:
exactly the matrices upstream's hooks would have given it alone. Its `step` then does upstream's
suppressing or forcing of the stop token on that row's guided logits.

The heads' weights exist only in eager attention; the family switches its T3 to eager for good
at load, as upstream's first `generate()` does (sdpa and eager differ numerically).
"""

from __future__ import annotations

import contextlib

from chatterbox.models.t3.inference.alignment_stream_analyzer import (
    LLAMA_ALIGNED_HEADS,
    AlignmentStreamAnalyzer,
)


def _attention_modules(tfmr):
    return [tfmr.layers[layer].self_attn for layer, _ in LLAMA_ALIGNED_HEADS]


def _made_by(hook, owners: tuple[str, ...]) -> bool:
    return getattr(hook, "__qualname__", "").startswith(owners)


_ANALYZER = (f"{AlignmentStreamAnalyzer.__name__}.",)


def hook_count(tfmr) -> int:
    """Upstream analyzers' and our spies' hooks on the aligned layers (tests: none may pile up;
    transformers' own output-recording hooks are not counted)."""
    owners = (*_ANALYZER, "AttentionSpy.")
    modules = _attention_modules(tfmr)
    return sum(_made_by(h, owners) for m in modules for h in m._forward_hooks.values())


@contextlib.contextmanager
def removing_new_hooks(tfmr):
    """The hooks upstream's analyzer adds to the aligned layers in the body go again (only
    those: transformers may add its own on a first forward), and the attention settings it
    changes are put back."""
    modules = _attention_modules(tfmr)
    before = [set(m._forward_hooks) for m in modules]
    config = tfmr.config
    saved = (config._attn_implementation, config.output_attentions)
    try:
        yield
    finally:
        for module, keys in zip(modules, before, strict=True):
            for key in set(module._forward_hooks) - keys:
                if _made_by(module._forward_hooks[key], _ANALYZER):
                    del module._forward_hooks[key]
        config._attn_implementation, config.output_attentions = saved


class AttentionSpy:
    """Keeps the aligned heads' attention (all rows) from the latest forward; `close()` removes
    the hooks."""

    def __init__(self, tfmr):
        self.weights: list = [None] * len(LLAMA_ALIGNED_HEADS)
        self._handles = []
        for k, ((_, head), module) in enumerate(
            zip(LLAMA_ALIGNED_HEADS, _attention_modules(tfmr), strict=True)
        ):
            self._handles.append(module.register_forward_hook(self._keeper(k, head)))

    def _keeper(self, k: int, head: int):
        def keep(module, args, output):
            if isinstance(output, tuple) and len(output) > 1 and output[1] is not None:
                self.weights[k] = output[1][:, head].detach().float().cpu().clone()

        return keep

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


class RowAlignment:
    """Upstream's analyzer for one logical row: model row `row`, `pad` left-padding columns."""

    def __init__(self, t3, spy: AttentionSpy, text_slice: tuple[int, int], row: int, pad: int):
        with removing_new_hooks(t3.tfmr):
            self.analyzer = AlignmentStreamAnalyzer(
                t3.tfmr,
                None,
                text_tokens_slice=text_slice,
                alignment_layer_idx=9,
                eos_idx=t3.hp.stop_speech_token,
            )
        self.spy, self.row, self.pad = spy, row, pad

    def __call__(self, logits, last_token: int):
        """`step` on this row's guided logits (1, V), as `T3.inference` calls it."""
        first = self.analyzer.curr_frame_pos == 0
        p = self.pad
        for k, weights in enumerate(self.spy.weights):
            own = weights[self.row]
            self.analyzer.last_aligned_attns[k] = own[p:, p:] if first else own[:, p:]
        return self.analyzer.step(logits, next_token=last_token)


class _Unaligned:
    """An analyzer that hooks nothing and leaves the logits as they are."""

    def __init__(self, tfmr, queue, text_tokens_slice, alignment_layer_idx=9, eos_idx=0):
        self.eos_idx = eos_idx

    def step(self, logits, next_token=None):
        return logits


@contextlib.contextmanager
def analyzer_off():
    """0.1.7's `T3.inference` with no alignment analyzer, as upstream main runs Multilingual V3
    (which dropped the analyzer): the baseline for V3, built from 0.1.7's own modules."""
    from chatterbox.models.t3 import t3 as t3_module

    saved = t3_module.AlignmentStreamAnalyzer
    t3_module.AlignmentStreamAnalyzer = _Unaligned
    try:
        yield
    finally:
        t3_module.AlignmentStreamAnalyzer = saved
