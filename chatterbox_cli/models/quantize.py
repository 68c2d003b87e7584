"""Opt-in int8 on CPU (`--quantize int8`): dynamic quantization of T3's linear layers.

GPT-2 computes its projections with transformers' `Conv1D` (a transposed linear layer), which
`quantize_dynamic` silently skips; converting them to `nn.Linear` first is what makes int8 pay
(T3 decode is memory-bound: ~1.2 GB of fp32 weights read per token). Weights become int8 with
one scale per tensor and activations are quantized on the fly, so outputs deviate from fp32:
tests/test_runtime.py bounds the deviation measured on this checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

QUANTIZED = ("tfmr",)
"""T3 submodules whose `nn.Linear` layers become int8. The speech head stays fp32: it is small
(27 MB) and upstream reads `t3.device` from its weight."""


def conv1d_to_linear(module: nn.Module) -> int:
    """Replace every transformers `Conv1D` below `module` by the equivalent `nn.Linear`."""
    from transformers.pytorch_utils import Conv1D

    count = 0
    for name, child in module.named_children():
        if isinstance(child, Conv1D):
            n_in, n_out = child.weight.shape
            linear = nn.Linear(n_in, n_out, device="meta")
            linear.weight = nn.Parameter(child.weight.detach().t().contiguous(), False)
            linear.bias = nn.Parameter(child.bias.detach(), False)
            setattr(module, name, linear)
            count += 1
        else:
            count += conv1d_to_linear(child)
    return count


def int8_skeleton(t3) -> None:
    """The module structure `quantize_t3` produces, with empty int8 weights (to load a saved
    quantized state into, without quantizing again)."""
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    conv1d_to_linear(t3.tfmr)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if type(child) is nn.Linear:
                int8 = Int8Linear(
                    child.in_features,
                    child.out_features,
                    bias_=child.bias is not None,
                    dtype=torch.qint8,
                )
                setattr(parent, name, int8)
            else:
                swap(child)

    swap(t3.tfmr)


def quantize_t3(t3) -> None:
    """int8 weights for GPT-2's projections, in place (CPU only)."""
    conv1d_to_linear(t3.tfmr)
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    torch.ao.quantization.quantize_dynamic(
        t3, set(QUANTIZED), dtype=torch.qint8, mapping={nn.Linear: Int8Linear}, inplace=True
    )
