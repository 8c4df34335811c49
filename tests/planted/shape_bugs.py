"""Shape functions with the bugs of the history planted into them: shape-only implementations on the meta
device, as a meta kernel or a compiler's shape inference is. The shape check must flag each."""

from __future__ import annotations

import torch

from convt_conformance import register, spec


def _output(input, weight, geometry: spec.Geometry, channels: int, size: tuple[int, ...]) -> torch.Tensor:
    lead = (geometry.batch, channels) if geometry.batched else (channels,)
    return torch.empty(lead + size, dtype=input.dtype, device=input.device)


# Shape functions modelled on PyTorch's meta kernel, its known discrepancies (contiguous results where eager
# gives channels_last) included: built on it, they inherit its rules, and only the planted bug is new.
@register("bug-meta-swapped-weight-dims", devices=("meta",), dtypes=("float32", "float16"), shape_only=True,
          built_on="torch-meta")
def swapped_weight_dims(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """#172711: a meta kernel that reads the output channels from the weight's first dimension (as for
    an ordinary convolution) instead of ``weight.shape[1] * groups``."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return _output(input, weight, geometry, weight.shape[0], geometry.output_size)


@register("bug-meta-drops-output-padding", devices=("meta",), dtypes=("float32", "float16"), shape_only=True,
          built_on="torch-meta")
def drops_output_padding(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """#98129: a shape function that leaves output_padding out of the output length."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    size = spec.output_size(geometry.input_size, geometry.kernel_size, geometry.stride, geometry.padding,
                            (0,) * geometry.dims, geometry.dilation)
    return _output(input, weight, geometry, geometry.out_channels, size)


@register("bug-meta-transposed-strides", devices=("meta",), dtypes=("float32", "float16"), shape_only=True)
def transposed_strides(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A shape function right about the shape but not the memory: its result is laid out with the last two
    axes swapped (a traced program then reads it in the wrong order)."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    lead = (geometry.batch, geometry.out_channels) if geometry.batched else (geometry.out_channels,)
    shape = lead + geometry.output_size
    return torch.empty(shape[:-2] + shape[:-3:-1], dtype=input.dtype, device=input.device).transpose(-1, -2)
