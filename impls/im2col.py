"""col2im as matmul: ``weight^T @ input`` per group gives one column per (tap, input position); the
columns are then scatter-added (col2im) into the uncropped output, which is cropped by ``padding``."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from .. import spec
from ..reference import batched, finish
from .registry import register


def landing_indexes(geometry: spec.Geometry, device: torch.device) -> torch.Tensor:
    """Flat index into the uncropped buffer of every (tap, input position) pair, shape ``(Kt*P,)``
    with taps outermost, matching the column layout."""
    table = _landing_table(geometry.input_size, geometry.kernel_size, geometry.stride, geometry.dilation,
                           geometry.full_size())
    return torch.from_numpy(table).to(device)


@functools.lru_cache(maxsize=1024)
def _landing_table(input_size: tuple[int, ...], kernel_size: tuple[int, ...], stride: tuple[int, ...],
                   dilation: tuple[int, ...], full_size: tuple[int, ...]) -> np.ndarray:
    """:func:`landing_indexes` as a numpy array, cached per geometry: shrinking and the near-copies a
    fuzzer draws meet the same geometries again and again (numpy, not torch: a cached array is no
    tensor that an autograd, inference or fake-tensor mode of one call could have marked). The reference's
    ``naive._landing_index`` holds the same indexes; im2col builds its own, from the index map per axis,
    so that it stays an independent check of that map."""
    dims = len(input_size)
    flat = np.zeros((), dtype=np.int64)
    for axis in range(dims):
        taps = np.arange(kernel_size[axis]) * dilation[axis]
        positions = np.arange(input_size[axis]) * stride[axis]
        axis_index = taps[:, None] + positions[None, :]  # (k_a, L_a)
        # broadcast the axis's (k, L) table against the axes accumulated so far
        flat = flat[..., None, None] * full_size[axis] + axis_index.reshape((1, 1) * axis + axis_index.shape)
    # flat now has axes (k_0, L_0, k_1, L_1, ...); bring taps first, then positions.
    order = list(range(0, 2 * dims, 2)) + list(range(1, 2 * dims, 2))
    return np.ascontiguousarray(flat.transpose(order).reshape(-1))


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
