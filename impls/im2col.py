"""col2im as matmul: ``weight^T @ input`` per group gives one column per (tap, input position); the
columns are then scatter-added (col2im) into the uncropped output, which is cropped by ``padding``."""

from __future__ import annotations

import math

import torch

from . import spec
from .naive import batched, finish
from .registry import register


def landing_indexes(geometry: spec.Geometry, device: torch.device) -> torch.Tensor:
    """Flat index into the uncropped buffer of every (tap, input position) pair, shape ``(Kt*P,)``
    with taps outermost, matching the column layout."""
    full = geometry.full_size()
    flat = torch.zeros((), dtype=torch.int64, device=device)
    for axis in range(geometry.dims):
        taps = torch.arange(geometry.kernel_size[axis], device=device) * geometry.dilation[axis]
        positions = torch.arange(geometry.input_size[axis], device=device) * geometry.stride[axis]
        axis_index = taps[:, None] + positions[None, :]  # (k_a, L_a)
        flat = flat[..., None, None] * full[axis] + _spread(axis_index, axis, geometry.dims)
    # flat now has axes (k_0, L_0, k_1, L_1, ...); bring taps first, then positions.
    order = list(range(0, 2 * geometry.dims, 2)) + list(range(1, 2 * geometry.dims, 2))
    return flat.permute(order).reshape(-1)


def _spread(axis_index: torch.Tensor, axis: int, dims: int) -> torch.Tensor:
    """Shape an axis's (k, L) index table so it broadcasts against the axes accumulated so far."""
    return axis_index.reshape((1, 1) * axis + axis_index.shape) if axis else axis_index


@register("im2col", dims=(1, 2, 3), devices=("cpu", "cuda"), dtypes=spec.ALL_DTYPES,
          grad=True, double_backward=True,  # through autograd
          deterministic=("cpu",),  # index_add_ is atomic on CUDA
          description="col2im as matmul: weight^T @ input columns per group, then index_add into the output")
def conv_transpose(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                   stride: spec.IntOrTuple = 1, padding: spec.IntOrTuple = 0,
                   output_padding: spec.IntOrTuple = 0, groups: int = 1,
                   dilation: spec.IntOrTuple = 1) -> torch.Tensor:
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    acc = spec.accumulation_dtype(input.dtype)
    x = batched(input, geometry).to(acc)
    n, g = x.shape[0], groups
    cin_g, cout_g = geometry.in_channels_per_group, geometry.out_channels_per_group
    kernel_taps, positions = math.prod(geometry.kernel_size), math.prod(geometry.input_size)
    w_columns = weight.to(acc).reshape(g, cin_g, cout_g * kernel_taps)
    columns = w_columns.transpose(1, 2) @ x.reshape(n, g, cin_g, positions)  # (N, g, Cout/g*Kt, P)
    columns = columns.reshape(n, geometry.out_channels, kernel_taps * positions)
    full_size = geometry.full_size()
    full = torch.zeros((n, geometry.out_channels, math.prod(full_size)), dtype=acc, device=x.device)
    full.index_add_(2, landing_indexes(geometry, x.device), columns)
    full = full.reshape((n, geometry.out_channels) + full_size)
    window = tuple(slice(p, p + o) for p, o in zip(geometry.padding, geometry.output_size))
    return finish(full[(slice(None),) * 2 + window], bias, geometry, input.dtype)
