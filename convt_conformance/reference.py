"""The float64 reference: the definition of :mod:`convt_conformance.spec` evaluated exactly enough
to judge any implementation, and ``explain``: which products sum into an output element.

Every check compares against :func:`reference`. It is the definition's scatter (every input element
times every tap, added where :func:`convt_conformance.spec.landing_position` puts it, then cropped by the
padding) in float64 (complex128), with every product formed at once by one batched matmul and added by
one ``index_add``: the per-tap loop of ``impls/naive.py`` costs a few tensor operations per tap, which
is most of an example's time on the small problems a fuzzer draws. It is not an implementation under
test; the project's tests hold it to that loop and to autograd of the forward convolution.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import spec


def scatter_sum_at_once(x: torch.Tensor, w: torch.Tensor, geometry: spec.Geometry) -> torch.Tensor:
    """The definition's sum of ``x * w`` in a few tensor operations instead of a few per tap: one batched matmul
    forms every (tap, input position) product, and ``index_add`` adds each at its landing position
    (the same slices), taps in order. The reference uses it: it is several times faster on the small
    problems a fuzzer draws, where the per-tap loop's cost is its Python overhead.

    ``x`` and ``w`` may both lead with one more axis of the same length: that many independent sums
    at once (``(S, N, Cout, *out)``), as the reference quantities form ``x*w`` and ``|x|*|w|``."""
    g = geometry.groups
    lead, n = x.shape[:-geometry.dims - 2], x.shape[-geometry.dims - 2]
    cin_g, cout_g = geometry.in_channels_per_group, geometry.out_channels_per_group
    taps, positions = math.prod(geometry.kernel_size), math.prod(geometry.input_size)
    w_columns = w.reshape(lead + (g, cin_g, cout_g * taps)).transpose(-1, -2)  # (*lead, g, Cout/g * taps, Cin/g)
    products = w_columns.unsqueeze(-4) @ x.reshape(lead + (n, g, cin_g, positions))  # (*lead, N, g, Cout/g * taps, P)
    rows = math.prod(lead) * n * geometry.out_channels
    full_size = geometry.full_size()
    full = torch.zeros((rows, math.prod(full_size)), dtype=x.dtype, device=x.device)
    index = landing_index(geometry.input_size, geometry.kernel_size, geometry.stride, geometry.dilation, full_size)
    index = index if index.device == x.device else index.to(x.device)
    full = full.index_add(1, index, products.reshape(rows, taps * positions))
    return cropped(full.reshape(lead + (n, g, cout_g) + full_size), geometry)


@functools.lru_cache(maxsize=1024)
def landing_index(input_size: tuple[int, ...], kernel_size: tuple[int, ...], stride: tuple[int, ...],
                   dilation: tuple[int, ...], full_size: tuple[int, ...]) -> torch.Tensor:
    """The flat position in the uncropped buffer (``full_size``) where each (tap, input position)
    product lands, taps outermost as the products are laid out: per axis ``t*d + i*s`` (the positions
    ``impls.naive.landing`` selects), times that axis's stride in the buffer. Cached: shrinking, re-seeding and
    fixed geometries meet the same axes again and again."""
    dims = len(input_size)
    index = np.zeros((1,) * 2 * dims, dtype=np.int64)  # numpy: a new geometry's index in microseconds
    for axis, (L, k, s, d) in enumerate(zip(input_size, kernel_size, stride, dilation)):
        buffer_stride = math.prod(full_size[axis + 1:])
        tap_shape, position_shape = [1] * 2 * dims, [1] * 2 * dims
        tap_shape[axis], position_shape[dims + axis] = k, L
        index = (index + (np.arange(k) * (d * buffer_stride)).reshape(tap_shape)
                 + (np.arange(L) * (s * buffer_stride)).reshape(position_shape))
    return torch.from_numpy(np.ascontiguousarray(index.reshape(-1)))


def cropped(full: torch.Tensor, geometry: spec.Geometry) -> torch.Tensor:
    """The output window of an uncropped ``(..., N, g, Cout/g, *full)`` buffer, as ``(..., N, Cout, *out)``."""
    window = tuple(slice(p, p + o) for p, o in zip(geometry.padding, geometry.output_size))
    return full[(Ellipsis,) + window].reshape(full.shape[:-geometry.dims - 2] + (geometry.out_channels,)
                                              + geometry.output_size)


def finish(result: torch.Tensor, bias: torch.Tensor | None, geometry: spec.Geometry,
           dtype: torch.dtype) -> torch.Tensor:
    """Add the bias in the accumulation type, round once to ``dtype``, drop the batch if unbatched."""
    if bias is not None:
        result = result + bias.to(result.dtype).reshape((1, -1) + (1,) * geometry.dims)
    result = result.to(dtype).contiguous()
    return result if geometry.batched else result[0]


def batched(input: torch.Tensor, geometry: spec.Geometry) -> torch.Tensor:
    return input if geometry.batched else input.unsqueeze(0)


def reference(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
              stride: spec.IntOrTuple = 1, padding: spec.IntOrTuple = 0,
              output_padding: spec.IntOrTuple = 0, groups: int = 1,
              dilation: spec.IntOrTuple = 1) -> torch.Tensor:
    """The definition evaluated in float64 (complex128 for complex inputs): the reference oracle."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return plus_bias(reference_sum(input, weight, geometry), bias, geometry.dims).contiguous()


def reference_sum(input: torch.Tensor, weight: torch.Tensor, geometry: spec.Geometry) -> torch.Tensor:
    """The reference's sum of products, before the bias, for a geometry already validated: float64
    (complex128), shaped like the output (a view into the uncropped buffer). ``input`` and ``weight``
    may lead with one more axis of the same length: that many sums at once."""
    wide = torch.complex128 if input.is_complex() else torch.float64
    batch_axis = -geometry.dims - 2
    x = input if geometry.batched else input.unsqueeze(batch_axis)
    summed = scatter_sum_at_once(x.to(wide), weight.to(wide), geometry)
    return summed if geometry.batched else summed.select(batch_axis, 0)


def plus_bias(summed: torch.Tensor, bias: torch.Tensor | None, dims: int) -> torch.Tensor:
    """A sum of products shaped like the output (batched or not), plus the bias in the sum's type: the
    reference's last addition."""
    return summed if bias is None else summed + bias.to(summed.dtype).reshape((-1,) + (1,) * dims)


@dataclass(frozen=True)
class Explanation:
    """Why an output element has its value: the products (and bias) that sum into it."""

    output_index: tuple[int, ...]
    terms: list[tuple[tuple[int, ...], tuple[int, ...], complex | float]]  # (input idx, weight idx, product)
    bias: complex | float | None
    value: complex | float

    def table(self) -> str:
        """The explanation as plain text, one product a line."""
        lines = [f"output{list(self.output_index)} = {_fmt(self.value)} is the sum of "
                 f"{len(self.terms)} product(s){' plus bias' if self.bias is not None else ''}:"]
        lines += [f"  input{list(i)} x weight{list(w)} = {_fmt(p)}" for i, w, p in self.terms]
        if self.bias is not None:
            lines.append(f"  bias = {_fmt(self.bias)}")
        return "\n".join(lines)


def _fmt(value: complex | float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def explain(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
            output_index: Sequence[int], stride: spec.IntOrTuple = 1, padding: spec.IntOrTuple = 0,
            output_padding: spec.IntOrTuple = 0, groups: int = 1,
            dilation: spec.IntOrTuple = 1) -> Explanation:
    """The (input index, kernel index, product) terms that the definition sums into
    ``output[output_index]``, computed in float64 from the index map of :mod:`convt_conformance.spec`."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    index = tuple(int(i) for i in output_index)
    if len(index) != len(geometry.output_shape) or not all(
            0 <= i < n for i, n in zip(index, geometry.output_shape)):
        raise IndexError(f"output index {index} is outside the output shape {geometry.output_shape}")
    wide = torch.complex128 if input.is_complex() else torch.float64
    x, w = input.detach().to("cpu", wide), weight.detach().to("cpu", wide)
    terms = []
    for term in spec.terms_of(geometry, index):
        product = (x[term.input_index] * w[term.weight_index]).item()
        terms.append((term.input_index, term.weight_index, product))
    channel = index[1] if geometry.batched else index[0]
    bias_value = None if bias is None else bias.detach().to("cpu", wide)[channel].item()
    value = sum((p for _, _, p in terms), 0.0) + (bias_value or 0.0)
    return Explanation(index, terms, bias_value, value)
