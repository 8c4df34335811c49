"""A kernel with its own backward, as a plugin writes one (``torch.autograd.Function``), and the backward
fault classes of the bug history planted into it. The correct one must pass every gradient check; each
bug must be flagged by the check the catalog names."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from convt_conformance import register, spec
from convt_conformance.impls.naive import conv_transpose as naive
from convt_conformance.reference import batched

REAL = ("float64", "float32", "float16", "bfloat16")
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_WEIGHT = {1: torch.nn.grad.conv1d_weight, 2: torch.nn.grad.conv2d_weight, 3: torch.nn.grad.conv3d_weight}


def grad_input(g: torch.Tensor, weight: torch.Tensor, geometry: spec.Geometry) -> torch.Tensor:
    """The forward convolution of ``g`` (batched) with the same parameters, cut to the input's size."""
    full = _CONV[geometry.dims](g, weight, None, geometry.stride, geometry.padding, geometry.dilation,
                                geometry.groups)
    return full[(slice(None),) * 2 + tuple(slice(0, L) for L in geometry.input_size)]


def grad_weight(x: torch.Tensor, g: torch.Tensor, weight_shape: torch.Size, geometry: spec.Geometry,
                dilation: tuple[int, ...] | None = None) -> torch.Tensor:
    """``x`` (batched) correlated with ``g`` at each tap's offsets: the ordinary convolution's weight
    gradient with ``g`` as its input and ``x`` (zero-extended to that convolution's output) as its
    output gradient."""
    dilation = dilation or geometry.dilation
    conv_out = [(o + 2 * p - d * (k - 1) - 1) // s + 1 for o, p, d, k, s in zip(
        geometry.output_size, geometry.padding, dilation, geometry.kernel_size, geometry.stride)]
    extend = [pad for L, out in reversed(list(zip(geometry.input_size, conv_out))) for pad in (0, out - L)]
    return _CONV_WEIGHT[geometry.dims](g, weight_shape, F.pad(x, extend), geometry.stride, geometry.padding,
                                       dilation, geometry.groups)


class ConvTransposeWithBackward(torch.autograd.Function):
    """Forward: the direct definition. Backward: written out with torch ops in the accumulation type,
    so that it is differentiable in turn (double backward)."""

    @staticmethod
    def forward(ctx, input, weight, bias, stride, padding, output_padding, groups, dilation):
        geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
        ctx.geometry = geometry
        ctx.save_for_backward(input, weight)
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)

    @classmethod
    def backward(cls, ctx, g):
        input, weight = ctx.saved_tensors
        geometry = ctx.geometry
        acc = spec.accumulation_dtype(g.dtype)
        g_wide, x_wide = batched(g, geometry).to(acc), batched(input, geometry).to(acc)
        d_input = d_weight = d_bias = None
        if ctx.needs_input_grad[0]:
            d_input = cls.input_gradient(g_wide, cls.weight_used(weight).to(acc), geometry).to(input.dtype)
            d_input = d_input if geometry.batched else d_input[0]
        if ctx.needs_input_grad[1]:
            d_weight = cls.weight_gradient(x_wide, g_wide, weight.shape, geometry).to(weight.dtype)
        if ctx.needs_input_grad[2]:
            d_bias = cls.bias_gradient(g_wide).to(g.dtype)
        return d_input, d_weight, d_bias, None, None, None, None, None

    @staticmethod
    def weight_used(weight: torch.Tensor) -> torch.Tensor:
        return weight

    @staticmethod
    def input_gradient(g: torch.Tensor, weight: torch.Tensor, geometry: spec.Geometry) -> torch.Tensor:
        return grad_input(g, weight, geometry)

    @staticmethod
    def weight_gradient(x: torch.Tensor, g: torch.Tensor, weight_shape, geometry: spec.Geometry) -> torch.Tensor:
        return grad_weight(x, g, weight_shape, geometry)

    @staticmethod
    def bias_gradient(g: torch.Tensor) -> torch.Tensor:
        return g.sum(dim=[0] + list(range(2, g.dim())))


def _entry(function: type[ConvTransposeWithBackward]):
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        return function.apply(input, weight, bias, stride, padding, output_padding, groups, dilation)
    conv_transpose.__doc__ = function.__doc__
    return conv_transpose


register("correct-custom-backward", dtypes=REAL, grad=True, double_backward=True,
         description="direct forward, a hand-written backward (torch.autograd.Function)")(
    _entry(ConvTransposeWithBackward))


class K1DenseGradOutput(ConvTransposeWithBackward):
    """#63314: with a 1x1 kernel and stride > 1, grad_input reads grad_output densely (a fast path)
    instead of at every stride-th position."""

    @staticmethod
    def input_gradient(g, weight, geometry):
        if any(k != 1 for k in geometry.kernel_size) or all(s == 1 for s in geometry.stride):
            return grad_input(g, weight, geometry)
        dense = g[(slice(None),) * 2 + tuple(slice(p, p + L) for p, L in zip(geometry.padding, geometry.input_size))]
        dense = F.pad(dense, [pad for L, got in reversed(list(zip(geometry.input_size, dense.shape[2:])))
                              for pad in (0, L - got)])
        return grad_input(dense, weight, dataclasses.replace(geometry, stride=(1,) * geometry.dims,
                                                             padding=(0,) * geometry.dims))


class HalfOutputPaddingRefused(ConvTransposeWithBackward):
    """#23545: float16/bfloat16 backward with output_padding > 0 goes to a fallback that raises."""

    @classmethod
    def backward(cls, ctx, g):
        if g.dtype in (torch.float16, torch.bfloat16) and any(op > 0 for op in ctx.geometry.output_padding):
            raise RuntimeError("backward not implemented for half with output_padding > 0")
        return super().backward(ctx, g)


class WeightGradDilationIgnored(ConvTransposeWithBackward):
    """grad_weight computed without the dilation when the stride is > 1 (B6 in the weight gradient)."""

    @staticmethod
    def weight_gradient(x, g, weight_shape, geometry):
        dilation = (1,) * geometry.dims if any(s > 1 for s in geometry.stride) else None
        return grad_weight(x, g, weight_shape, geometry, dilation)


class BiasGradFirstSample(ConvTransposeWithBackward):
    """grad_bias summed over the first sample of the batch only."""

    @staticmethod
    def bias_gradient(g):
        return g[:1].sum(dim=[0] + list(range(2, g.dim())))


class GradOutputAssumedContiguous(ConvTransposeWithBackward):
    """The backward reads grad_output's memory as if it were contiguous (B18 for the gradient): a
    channels-last, strided or broadcast (stride-0) grad_output gives wrong gradients."""

    @classmethod
    def backward(cls, ctx, g):
        contiguous_strides = torch.empty(g.shape, device="meta").stride()
        return super().backward(ctx, g.as_strided(g.shape, contiguous_strides))


class ExpandedWeightDetached(ConvTransposeWithBackward):
    """#4500: with an expanded (stride-0) weight, the backward works on a detached contiguous copy, so
    double backward loses the weight's part."""

    @staticmethod
    def weight_used(weight):
        return weight.detach().contiguous() if 0 in weight.stride() else weight


register("bug-grad-k1-dense-grad-output", dtypes=REAL, grad=True)(_entry(K1DenseGradOutput))
register("bug-grad-half-output-padding-refused", dtypes=("float16", "bfloat16"), grad=True)(
    _entry(HalfOutputPaddingRefused))
register("bug-grad-weight-dilation-ignored", dtypes=REAL, grad=True)(_entry(WeightGradDilationIgnored))
register("bug-grad-bias-first-sample", dtypes=REAL, grad=True)(_entry(BiasGradFirstSample))
register("bug-grad-output-assumed-contiguous", dtypes=REAL, grad=True)(_entry(GradOutputAssumedContiguous))
register("bug-double-backward-expanded-weight", dtypes=REAL, grad=True, double_backward=True)(
    _entry(ExpandedWeightDetached))


class OrderDependentWeightGradient(ConvTransposeWithBackward):
    """B17 in the backward: grad_weight's sums kept at another precision every other call (as a kernel
    that picks its reduction by workload does), declared deterministic. Each result is within the
    allowance; only the repetition differs."""

    calls = 0

    @classmethod
    def weight_gradient(cls, x, g, weight_shape, geometry):
        cls.calls += 1
        if cls.calls % 2:
            return grad_weight(x.double(), g.double(), weight_shape, geometry).to(x.dtype)
        return grad_weight(x, g, weight_shape, geometry)


register("bug-grad-nondeterministic", dtypes=("float32",), grad=True)(_entry(OrderDependentWeightGradient))


class InputGradientZeroWhenKernelReachesPast(ConvTransposeWithBackward):
    """grad_input returned as zeros when the kernel reaches past the input on an axis that padding crops,
    as PyTorch's oneDNN bfloat16 conv_transpose3d backward in channels_last_3d does (the shipped
    torch-onednn-bf16-3d-channels-last-grad-input-zero expectation): a silent wrong gradient."""

    @staticmethod
    def input_gradient(g, weight, geometry):
        exact = grad_input(g, weight, geometry)
        reaches_past = any(d * (k - 1) + 1 > L and p > 0 for L, k, p, d in zip(
            geometry.input_size, geometry.kernel_size, geometry.padding, geometry.dilation))
        return torch.zeros_like(exact) if reaches_past else exact


register("bug-grad-input-zero-kernel-past-input", dtypes=REAL, grad=True)(
    _entry(InputGradientZeroWhenKernelReachesPast))
