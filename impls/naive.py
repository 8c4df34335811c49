"""The direct definition as a kernel (scatter view): for every kernel tap, ``input x tap`` (a channel
contraction per group) is added into a strided slice of an uncropped buffer, which is then cropped by
``padding``. The reference (:mod:`convt_conformance.reference`) is the same scatter in float64 with every
product formed at once; this per-tap loop is the plainest reading of the definition.
"""

from __future__ import annotations

import itertools
import math

import torch

from .. import spec
from ..reference import batched, cropped, finish
from .registry import register


def scatter_sum(x: torch.Tensor, w: torch.Tensor, geometry: spec.Geometry) -> torch.Tensor:
    """Sum ``x * w`` by the definition. ``x`` is batched ``(N, Cin, *L)``; the result is
    ``(N, Cout, *out)`` in ``x``'s dtype, without bias."""
    g = geometry.groups
    n = x.shape[0]
    cin_g, cout_g = geometry.in_channels_per_group, geometry.out_channels_per_group
    x_groups = x.reshape(n, g, cin_g, math.prod(geometry.input_size))  # (N, g, Cin/g, P)
    w_groups = w.reshape(g, cin_g, cout_g, *geometry.kernel_size)
    full = torch.zeros((n, g, cout_g) + geometry.full_size(), dtype=x.dtype, device=x.device)
    for tap in _taps(geometry):
        w_tap = w_groups[(slice(None), slice(None), slice(None)) + tap]  # (g, Cin/g, Cout/g)
        products = (w_tap.transpose(1, 2) @ x_groups).reshape((n, g, cout_g) + geometry.input_size)
        full[(slice(None),) * 3 + landing(tap, geometry)] += products
    return cropped(full, geometry)


def landing(tap: tuple[int, ...], geometry: spec.Geometry) -> tuple[slice, ...]:
    """Where one kernel tap's products land in the uncropped buffer: input index ``i`` at ``i*s + t*d``
    (the index map :func:`convt_conformance.spec.landing_position`, shifted by the padding the crop removes)."""
    return tuple(slice(t * d, t * d + (L - 1) * s + 1, s) for t, d, L, s in zip(
        tap, geometry.dilation, geometry.input_size, geometry.stride))


def _taps(geometry: spec.Geometry) -> itertools.product:
    return itertools.product(*(range(k) for k in geometry.kernel_size))


@register("naive", dims=(1, 2, 3), devices=("cpu", "cuda"), dtypes=spec.ALL_DTYPES,
          grad=True, double_backward=True,  # through autograd
          description="direct definition: per kernel tap, scatter input x tap into strided output slices")
def conv_transpose(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                   stride: spec.IntOrTuple = 1, padding: spec.IntOrTuple = 0,
                   output_padding: spec.IntOrTuple = 0, groups: int = 1,
                   dilation: spec.IntOrTuple = 1) -> torch.Tensor:
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    acc = spec.accumulation_dtype(input.dtype)
    summed = scatter_sum(batched(input, geometry).to(acc), weight.to(acc), geometry)
    return finish(summed, bias, geometry, input.dtype)


