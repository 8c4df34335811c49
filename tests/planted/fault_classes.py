"""Planted bugs from the fault classes of real transposed-convolution bugs (bug history, section B).

Each is wrong only in the parameter region where such bugs occur; elsewhere it is the definition.
Together with tests/planted/oracle_bugs.py they make the suite's measured kill rate.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from convt_conformance import register, spec
from convt_conformance.impls.naive import conv_transpose as naive
from convt_conformance.impls.naive import scatter_sum
from convt_conformance.reference import batched, finish
from tests.planted.fft import fft_conv_transpose

FLOATS = ("float32", "float64")


def _fit(result: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Crop or zero-pad ``result`` to ``shape`` (what a kernel writing a preallocated output does)."""
    out = result.new_zeros(shape)
    common = tuple(slice(0, min(a, b)) for a, b in zip(result.shape, shape))
    out[common] = result[common]
    return out


def _plus_bias(result: torch.Tensor, bias: torch.Tensor | None, dims: int) -> torch.Tensor:
    """Add the bias to a result computed without it (batched or not)."""
    return result if bias is None else result + bias.reshape((-1,) + (1,) * dims)


@register("bug-b1-output-padding-zero-fill", dtypes=FLOATS)
def output_padding_zero_fill(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                             dilation=1):
    """B1 (TVM #4318, torch-mlir #2026): output_padding appended as zero rows instead of extending
    the scatter, so outputs that taps reach in that tail come out zero (the bias still added)."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    result = naive(input, weight, None, stride, padding, output_padding, groups, dilation)
    lead = (slice(None),) * (result.dim() - geometry.dims)
    for axis, op in enumerate(geometry.output_padding):
        if op:
            tail = tuple(slice(-op, None) if a == axis else slice(None) for a in range(geometry.dims))
            result[lead + tail] = 0
    return _plus_bias(result, bias, geometry.dims)


@register("bug-b3-output-padding-as-input-padding", dtypes=FLOATS)
def output_padding_as_input_padding(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                                    dilation=1):
    """B3 (coreai-torch #57): output_padding lowered as padding of the *input*, so the output is too
    long by op*(s-1) wherever op > 0 and s > 1."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    x = batched(input, geometry)
    pads = [v for op in reversed(geometry.output_padding) for v in (0, op)]
    result = naive(F.pad(x, pads), weight, bias, stride, padding, 0, groups, dilation)
    return result if geometry.batched else result[0]


@register("bug-b4-output-padding-on-the-wrong-side", dtypes=FLOATS)
def output_padding_wrong_side(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1):
    """B4 (ORT #9370, keras #22876): the extra output_padding element goes to the head instead of the
    tail, shifting values by op while the shape stays right."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if not any(geometry.output_padding):
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    x = batched(input, geometry)
    full = scatter_sum(x, weight, dataclasses.replace(geometry, padding=(0,) * geometry.dims))
    window = tuple(slice(max(p - op, 0), max(p - op, 0) + o) for p, op, o in zip(
        geometry.padding, geometry.output_padding, geometry.output_size))
    shifted = _fit(full[(slice(None),) * 2 + window], (x.shape[0], geometry.out_channels) + geometry.output_size)
    return finish(shifted, bias, geometry, input.dtype)


@register("bug-b5-dilated-extent", dtypes=FLOATS)
def dilated_extent(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """B5 (ORT #2518): the dilated kernel extent taken as k+d-1 instead of d(k-1)+1: the output is
    off by (k-2)(d-1) wherever k >= 3 and d >= 2."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    result = naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    wrong = tuple(o - (k - 2) * (d - 1) if k >= 3 else o for o, k, d in zip(
        geometry.output_size, geometry.kernel_size, geometry.dilation))
    lead = result.shape[:-geometry.dims]
    return _fit(result, tuple(lead) + tuple(max(w, 1) for w in wrong))


@register("bug-b6-dilation-ignored-with-stride", dtypes=FLOATS)
def dilation_ignored(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """B6 (#1565, mxnet #11203): with stride > 1 the call goes to a path that ignores dilation; the
    output buffer still has the right shape."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if not any(s > 1 and d > 1 for s, d in zip(geometry.stride, geometry.dilation)):
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    undilated = dataclasses.replace(geometry, dilation=(1,) * geometry.dims, padding=(0,) * geometry.dims,
                                    output_padding=(0,) * geometry.dims)
    full = scatter_sum(batched(input, geometry), weight, undilated)
    window = tuple(slice(p, p + o) for p, o in zip(geometry.padding, geometry.output_size))
    cropped = _fit(full[(slice(None),) * 2 + window], (full.shape[0], geometry.out_channels) + geometry.output_size)
    return finish(cropped, bias, geometry, input.dtype)


@register("bug-b7-forward-semantics-3d", dims=(3,), dtypes=FLOATS)
def forward_semantics(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """B7 (#48400): the transposed flag is lost for 3d problems with stride > 1: forward-convolution
    semantics and output size."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if geometry.groups != 1 or not any(s > 1 for s in geometry.stride) or any(
            L + 2 * p < d * (k - 1) + 1 for L, p, d, k in zip(geometry.input_size, geometry.padding,
                                                                geometry.dilation, geometry.kernel_size)):
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return F.conv3d(input, weight.transpose(0, 1), bias, geometry.stride, geometry.padding, geometry.dilation)


@register("bug-b8-channel-swap", dtypes=FLOATS)
def channel_swap(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """B8 (ACL #402, tvm #9465): the weight's memory read as [Cout, Cin] instead of [Cin, Cout];
    invisible when Cin == Cout."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if groups == 1 and geometry.in_channels != geometry.out_channels:
        weight = weight.reshape(weight.shape[1], weight.shape[0], *weight.shape[2:]).transpose(0, 1)
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("bug-b9-groups-interleaved", dtypes=FLOATS)
def groups_interleaved(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """B9 (oneDNN #352): output channels of the groups interleaved (g1f1, g2f1, ...) instead of
    concatenated, when each group has several output channels."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    result = naive(input, weight, None, stride, padding, output_padding, groups, dilation)
    cout_g = geometry.out_channels_per_group
    if groups > 1 and cout_g > 1:
        channel_axis = 1 if geometry.batched else 0
        order = torch.arange(geometry.out_channels).reshape(groups, cout_g).t().reshape(-1)
        result = result.index_select(channel_axis, order.to(result.device))
    return _plus_bias(result, bias, geometry.dims)


@register("bug-b10-padding-as-input-padding", dtypes=FLOATS)
def padding_as_input_padding(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                             dilation=1):
    """B10 (TICO #420): PyTorch's padding applied as zero padding of the input, not as a crop of the
    output."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if not any(geometry.padding):
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    x = batched(input, geometry)
    pads = [v for p in reversed(geometry.padding) for v in (p, p)]
    result = naive(F.pad(x, pads), weight, bias, stride, 0, output_padding, groups, dilation)
    return result if geometry.batched else result[0]


@register("bug-b12-k1-fast-path", dtypes=FLOATS)
def k1_fast_path(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """B12 (#63314): a 1x1-kernel fast path that skips col2im without checking the stride: input
    elements are written contiguously instead of every stride-th position."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if any(k != 1 for k in geometry.kernel_size) or all(s == 1 for s in geometry.stride):
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    dense = naive(input, weight, None, 1, 0, 0, groups, 1)
    window = tuple(slice(p, None) for p in geometry.padding)
    lead = (slice(None),) * (dense.dim() - geometry.dims)
    result = _fit(dense[lead + window], tuple(dense.shape[:-geometry.dims]) + geometry.output_size)
    return _plus_bias(result, bias, geometry.dims)


@register("bug-b15-half-accumulation", dtypes=("float16", "bfloat16"))
def half_accumulation(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """B15 (#148973, coremltools #2324): float16/bfloat16 partial sums kept in the half type while the
    implementation declares float32 accumulation."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return finish(scatter_sum(batched(input, geometry), weight, geometry), bias, geometry, input.dtype)


@register("bug-b20-kernel-beyond-input", dtypes=FLOATS)
def kernel_beyond_input(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """B20 (nntrainer #4347): col2im bounds computed from the input extent, so taps that reach past
    the last input position are dropped when the kernel is larger than the input."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    reach = [(L - 1) * s for L, s in zip(geometry.input_size, geometry.stride)]
    beyond = [[t * d > r for t in range(k)] for k, d, r in zip(geometry.kernel_size, geometry.dilation, reach)]
    if not any(any(axis) for axis in beyond):
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    mask = torch.ones(geometry.kernel_size, dtype=weight.dtype, device=weight.device)
    for axis, flags in enumerate(beyond):
        keep = torch.tensor([0.0 if f else 1.0 for f in flags], dtype=weight.dtype, device=weight.device)
        mask = mask * keep.reshape([-1 if a == axis else 1 for a in range(geometry.dims)])
    return naive(input, weight * mask, bias, stride, padding, output_padding, groups, dilation)


@register("bug-b13-accepts-empty-output", dtypes=FLOATS)
def accepts_empty_output(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1):
    """B13 (#88647, #185581): the output-size check missing on one path: returns an empty tensor
    when padding leaves no output."""
    try:
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    except spec.InvalidProblem as exc:
        if "output size" not in str(exc):
            raise
    dims = weight.dim() - 2
    lead = tuple(input.shape[:-dims])
    return input.new_zeros(lead[:-1] + (weight.shape[1] * groups,) + (0,) * dims)



@register("bug-crop-whole-taps", dtypes=FLOATS)
def crop_whole_taps(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Padding larger than the dilated kernel's reach (p > d*(k-1): whole taps cropped away) clamped
    to d*(k-1) when the output window is placed, so the output is shifted while its shape is right
    (oneDNN-style kernels that split padding into "cropped taps" and "cropped rows")."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    reach = [d * (k - 1) for k, d in zip(geometry.kernel_size, geometry.dilation)]
    if all(p <= r for p, r in zip(geometry.padding, reach)):
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    full = scatter_sum(batched(input, geometry), weight, dataclasses.replace(geometry, padding=(0,) * geometry.dims))
    window = tuple(slice(min(p, r), min(p, r) + o) for p, r, o in zip(geometry.padding, reach, geometry.output_size))
    shifted = _fit(full[(slice(None),) * 2 + window], (full.shape[0], geometry.out_channels) + geometry.output_size)
    return finish(shifted, bias, geometry, input.dtype)


CHANNEL_BLOCK = 8


@register("bug-channel-block-tail", dtypes=FLOATS)
def channel_block_tail(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Output channels computed in blocks of 8; the last, partial block of a group with more than 8
    output channels reuses the previous block's weights (a tail loop indexed from the wrong base)."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    cout_g = geometry.out_channels_per_group
    tail = cout_g % CHANNEL_BLOCK
    if cout_g <= CHANNEL_BLOCK or not tail:
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    wrong = weight.clone()
    wrong[:, cout_g - tail:] = weight[:, cout_g - tail - CHANNEL_BLOCK:cout_g - CHANNEL_BLOCK]
    return naive(input, wrong, bias, stride, padding, output_padding, groups, dilation)


@register("bug-undeclared-transform", dtypes=FLOATS)
def undeclared_transform(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A correct FFT algorithm that does not declare ``algorithm="transform"``: its error is as large
    as a transform's allowance, far beyond a direct kernel's, and a direct kernel that far off is a bug."""
    return fft_conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation)


HALVES = ("float16", "bfloat16")


@register("bug-transform-half-spectra", dtypes=HALVES, algorithm="transform")
def transform_half_spectra(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """An FFT kernel declared a transform (with the default float32 accumulation) that keeps its spectra and
    their channel sums in the half type itself: each product of spectra and each partial sum over input
    channels is rounded to it."""
    rounded = _rounded_to(input.dtype)
    return fft_conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                              spectra=rounded)


@register("bug-transform-declared-half-sums", dtypes=HALVES, algorithm="transform")
def transform_declared_half_sums(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                                 dilation=1):
    """A direct kernel that sums in the half type (undeclared) and declares itself a transform, whose
    worst-case allowance is wide enough to hide half-precision sums."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return finish(scatter_sum(batched(input, geometry), weight, geometry), bias, geometry, input.dtype)


def _rounded_to(dtype: torch.dtype):
    def rounded(spectrum: torch.Tensor) -> torch.Tensor:
        return torch.complex(spectrum.real.to(dtype).to(spectrum.real.dtype),
                             spectrum.imag.to(dtype).to(spectrum.imag.dtype))
    return rounded


@register("bug-compiled-crop-and-output-padding", dtypes=FLOATS, fixed_geometries=True)
def compiled_crop_and_output_padding(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                                     dilation=1):
    """A kernel that compiles per shape (checked on the fixed geometries) and is wrong only where padding crops
    a whole tap away or output_padding reaches the stride: it leaves the last output element of those
    problems unwritten (zero)."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    result = naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    crops = any(p > d * (k - 1) for p, d, k in zip(geometry.padding, geometry.dilation, geometry.kernel_size))
    reaches = any(op >= s for op, s in zip(geometry.output_padding, geometry.stride))
    if crops and reaches and result.numel():
        result.view(-1)[-1] = 0
    return result
