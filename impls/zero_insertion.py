"""Zero insertion, then an ordinary convolution: insert ``stride-1`` zeros between input elements,
pad by ``dilation*(k-1) - padding`` on each side (negative crops) plus ``output_padding`` at the end,
flip the kernel and swap its in/out channels per group, and run a stride-1 dilated convolution.

Known difference from the definition: the inserted and padded zeros are multiplied by the kernel too,
so a NaN or infinite weight spreads (``0 * inf = nan``) to outputs the definition never reaches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import spec
from ..reference import batched
from .registry import register

_CONVOLUTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def insert_zeros(x: torch.Tensor, stride: tuple[int, ...]) -> torch.Tensor:
    """Put ``s-1`` zeros between neighbouring elements of every spatial axis."""
    spatial = x.shape[2:]
    spread = x.new_zeros(x.shape[:2] + tuple((L - 1) * s + 1 for L, s in zip(spatial, stride)))
    spread[(slice(None),) * 2 + tuple(slice(None, None, s) for s in stride)] = x
    return spread


def flipped_transposed_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """``(Cin, Cout/g, *k)`` -> ``(Cout, Cin/g, *k)`` with every spatial axis reversed."""
    cin, cout_g, *kernel = weight.shape
    per_group = weight.reshape(groups, cin // groups, cout_g, *kernel).transpose(1, 2)
    swapped = per_group.reshape(groups * cout_g, cin // groups, *kernel)
    return swapped.flip(list(range(2, weight.dim())))


@register("zero-insertion", dims=(1, 2, 3), devices=("cpu", "cuda"), dtypes=spec.ALL_DTYPES,
          grad=True, double_backward=True,  # through autograd
          deterministic=("cpu",),  # CUDA convolutions may pick atomic algorithms
          description="insert stride-1 zeros, pad, then an ordinary stride-1 convolution (torch conv{1,2,3}d)")
def conv_transpose(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                   stride: spec.IntOrTuple = 1, padding: spec.IntOrTuple = 0,
                   output_padding: spec.IntOrTuple = 0, groups: int = 1,
                   dilation: spec.IntOrTuple = 1) -> torch.Tensor:
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    acc = spec.accumulation_dtype(input.dtype)
    spread = insert_zeros(batched(input, geometry).to(acc), geometry.stride)
    pads: list[int] = []
    for k, d, p, op in reversed(list(zip(geometry.kernel_size, geometry.dilation, geometry.padding,
                                         geometry.output_padding))):
        pads += [d * (k - 1) - p, d * (k - 1) - p + op]  # F.pad lists the last axis first
    padded = F.pad(spread, pads)
    conv = _CONVOLUTIONS[geometry.dims]
    result = conv(padded, flipped_transposed_weight(weight.to(acc), groups),
                  None if bias is None else bias.to(acc), stride=1, padding=0,
                  dilation=geometry.dilation, groups=groups)
    result = result.to(input.dtype).contiguous()
    return result if geometry.batched else result[0]
