"""Kernels wrong in the region of a shipped known-discrepancy rule: one with the rule's own bug (which a
copy of the rule must excuse) and one with another bug there (which the copy must not)."""

from __future__ import annotations

import torch

from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose as naive
from tests.planted.custom_backward import ConvTransposeWithBackward, _entry


def _non_finite_replaced(value: float):
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        result = naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
        if bool(torch.isfinite(weight).all()):  # the rule's region: a non-finite weight
            return result
        return torch.where(torch.isinf(result), torch.full_like(result, value), result)
    return conv_transpose


register("rule-nan-where-inf", dtypes=("float32",),
         description="NaN where the definition gives +-inf (the bug of the oneDNN non-finite rules)")(
    _non_finite_replaced(float("nan")))
register("rule-zero-where-inf", dtypes=("float32",),
         description="finite zeros where the definition gives +-inf (another bug in the same region)")(
    _non_finite_replaced(0.0))


class GradInputZeroWhenKernelDeeper(ConvTransposeWithBackward):
    """grad_input all zeros for a 3d problem whose kernel is longer than the input on some axis, with padding:
    the bug of the oneDNN bfloat16 channels_last_3d rule, in every layout."""

    @classmethod
    def backward(cls, ctx, g):
        d_input, *rest = super().backward(ctx, g)
        geometry = ctx.geometry
        deeper = any(k > L for k, L in zip(geometry.kernel_size, geometry.input_size))
        if d_input is not None and geometry.dims == 3 and deeper and any(geometry.padding):
            d_input = torch.zeros_like(d_input)
        return (d_input, *rest)


class GradWeightDoubled(ConvTransposeWithBackward):
    """grad_weight twice the definition's, everywhere."""

    @staticmethod
    def weight_gradient(x, g, weight_shape, geometry):
        return 2 * ConvTransposeWithBackward.weight_gradient(x, g, weight_shape, geometry)


register("rule-grad-input-zero", dtypes=("bfloat16",), grad=True)(_entry(GradInputZeroWhenKernelDeeper))
register("rule-grad-weight-doubled", dtypes=("bfloat16",), grad=True)(_entry(GradWeightDoubled))


register("rule-built-on-the-nan-kernel", dtypes=("float32",), built_on="rule-nan-where-inf",
         description="a library layered on rule-nan-where-inf, declared built on it")(
    _non_finite_replaced(float("nan")))
register("rule-on-the-nan-kernel-undeclared", dtypes=("float32",),
         description="the same library, without built_on")(_non_finite_replaced(float("nan")))


@register("rule-no-ieee-claim", dtypes=("float32",), special_values=False,
          description="correct on finite values, flushes non-finite results to the largest float")
def _no_ieee_claim(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    result = naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return torch.nan_to_num(result)
