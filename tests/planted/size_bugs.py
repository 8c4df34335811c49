"""Planted bugs that show only at model sizes, and correct kernels that compute the way large-problem kernels do.

Each bug is PyTorch's own kernel outside its region, so only the size decides whether the gate sees it:
vendor kernels block channels (oneDNN by 16/32/64), choose other code paths past some kernel size, stride
or batch, and index in 32 bits (pytorch#84488). Gradients come from autograd through the same arithmetic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from convt_conformance import register, spec

CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
BLOCK = 64
INDEX_LIMIT = 2**31  # the first element a signed 32-bit index cannot address
ON_TORCH = dict(grad=True, built_on="torch-cpu-default")


def _torch(input, weight, bias, stride, padding, output_padding, groups, dilation):
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return CONV_TRANSPOSE[geometry.dims](input, weight, bias, geometry.stride, geometry.padding,
                                         geometry.output_padding, groups, geometry.dilation)


def _channel_mask(weight: torch.Tensor, groups: int, keep) -> torch.Tensor:
    """A weight with the input channels ``keep(index within the group, channels per group)`` rejects zeroed."""
    cin_g = weight.shape[0] // groups
    within = torch.arange(weight.shape[0], device=weight.device) % cin_g
    kept = keep(within, cin_g).to(weight.dtype).reshape((-1,) + (1,) * (weight.dim() - 1))
    return weight * kept


@register("bug-drops-channels-past-64", **ON_TORCH)
def drops_channels_past_64(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A blocked kernel that reads only the first 64-channel block of each group's input channels (the fault
    class of oneDNN's blocked kernels): every input channel past 64 in a group is dropped."""
    return _torch(input, _channel_mask(weight, groups, lambda c, cin_g: c < BLOCK), bias, stride, padding,
                  output_padding, groups, dilation)


@register("bug-wrong-past-small-sizes", **ON_TORCH)
def wrong_past_small_sizes(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A kernel 1% off whenever a kernel is longer than 5, a stride larger than 4 or the batch larger than 3:
    the code paths the gate's small problems never reach."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    result = _torch(input, weight, bias, stride, padding, output_padding, groups, dilation)
    large = max(geometry.kernel_size) > 5 or max(geometry.stride) > 4 or (geometry.batched and geometry.batch > 3)
    return result * 1.01 if large else result


@register("bug-blocked-tail-1024", **ON_TORCH)
def blocked_tail_1024(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A large-channel path (1000 or more input channels per group) that sums 64-channel blocks and drops the
    last, partial one: wrong at 1000-1023 channels, right at 1024."""
    def keep(c, cin_g):
        whole = cin_g // BLOCK * BLOCK
        return c < whole if cin_g >= 1000 else torch.ones_like(c, dtype=torch.bool)

    return _torch(input, _channel_mask(weight, groups, keep), bias, stride, padding, output_padding, groups, dilation)


@register("bug-index-overflow-32bit", dtypes=("float32", "bfloat16"), built_on="torch-cpu-default")
def index_overflow(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A kernel that addresses its output with a signed 32-bit index: past 2^31 elements it writes over the
    start again, so the elements past 2^31 keep whatever was there (zero, in this fresh output) and the
    first ones get the last ones' values. One-tap 1d kernels (the scale profile's ``int32-output``) take a
    lean path that needs no more memory than the output: PyTorch's own kernel needs three times that."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if geometry.dims == 1 and geometry.kernel_size == (1,) and geometry.padding == (0,) and groups == 1:
        result = _one_tap(input, weight, bias, geometry)
    else:
        result = _torch(input, weight, bias, stride, padding, output_padding, groups, dilation)
    flat = result.view(-1)
    if flat.numel() > INDEX_LIMIT:
        beyond = flat[INDEX_LIMIT:].clone()
        flat[INDEX_LIMIT:] = 0
        flat[:beyond.numel()] = beyond
    return result


def _one_tap(input, weight, bias, geometry) -> torch.Tensor:
    """A 1d transposed convolution with one tap and no padding: each input lands at ``i * stride``; the sum is
    rounded to the dtype, then the bias added (as PyTorch does)."""
    x = input if geometry.batched else input.unsqueeze(0)
    result = torch.zeros((x.shape[0],) + geometry.output_shape[-2:], dtype=input.dtype)
    if bias is not None:
        result += bias.reshape(-1, 1)
    landed = torch.einsum("ncl,cd->ndl", x.float(), weight[:, :, 0].float()).to(input.dtype)
    result[:, :, ::geometry.stride[0]][:, :, :geometry.input_size[0]] += landed
    return result if geometry.batched else result[0]


@register("correct-blocked-64", dtypes=("float64", "float32", "float16", "bfloat16"), **ON_TORCH)
def blocked_64(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Input channels summed in blocks of 64, each block's partial sum kept in the accumulation type and the
    blocks added in turn (as blocked CPU kernels do); rounded once to the input's dtype."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    acc = spec.accumulation_dtype(input.dtype)
    x, w = input.to(acc), weight.to(acc)
    cin_g = geometry.in_channels_per_group
    total = None
    for start in range(0, cin_g, BLOCK):
        keep = lambda c, _, start=start: (c >= start) & (c < start + BLOCK)  # noqa: E731
        part = _torch(x, _channel_mask(w, groups, keep), None, stride, padding, output_padding, groups, dilation)
        total = part if total is None else total + part
    if bias is not None:
        total = total + bias.to(acc).reshape((-1,) + (1,) * geometry.dims)
    return total.to(input.dtype)


@register("correct-split-k", dtypes=("float64", "float32", "float16", "bfloat16"), **ON_TORCH)
def split_k(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Split-K: the reduction over input channels split into up to four slices, each computed on its own (as a
    GEMM kernel splits its K dimension over thread blocks) and the partial outputs added in the accumulation
    type; rounded once."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    acc = spec.accumulation_dtype(input.dtype)
    x, w = input.to(acc), weight.to(acc)
    cin_g = geometry.in_channels_per_group
    slices = min(4, cin_g)
    bounds = [cin_g * i // slices for i in range(slices + 1)]
    total = None
    for lo, hi in zip(bounds, bounds[1:]):
        keep = lambda c, _, lo=lo, hi=hi: (c >= lo) & (c < hi)  # noqa: E731
        part = _torch(x, _channel_mask(w, groups, keep), None, stride, padding, output_padding, groups, dilation)
        total = part if total is None else part + total
    if bias is not None:
        total = total + bias.to(acc).reshape((-1,) + (1,) * geometry.dims)
    return total.to(input.dtype)


@register("bug-transform-percent-off", algorithm="transform", built_on="torch-cpu-default")
def transform_percent_off(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Declared a transform (FFT/Winograd) algorithm, and 0.5% off everywhere: within the worst-case normwise
    allowance of a layer with hundreds of channels, far past a correct transform's typical error."""
    return _torch(input, weight, bias, stride, padding, output_padding, groups, dilation) * 1.005
