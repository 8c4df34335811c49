"""Planted bugs, one per oracle, registered through the public plugin API. Each is wrong only in the
parameter region where such bugs occur in the wild (docs/bug-regions.md)."""

from __future__ import annotations

import torch

from convt_conformance import register, spec
from convt_conformance.impls.naive import conv_transpose as naive
from convt_conformance.impls.zero_insertion import conv_transpose as zero_insertion
from tests.planted.rounding import to_tf32

FLOATS = ("float32", "float64")


@register("bug-shape-drops-output-padding", dtypes=FLOATS)
def drops_output_padding(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1):
    """Fault class 2: output_padding ignored, so the output is too short wherever it is > 0."""
    spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return naive(input, weight, bias, stride, padding, 0, groups, dilation)


@register("bug-exact-group0-bias", dtypes=FLOATS)
def group0_bias(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Fault class 9 (rten #1408): every group adds group 0's bias."""
    if bias is not None and groups > 1:
        per_group = bias.numel() // groups
        bias = bias[:per_group].repeat(groups)
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("bug-bound-tf32", dtypes=("float32",))
def tf32_inputs(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Fault class 15: float32 inputs silently rounded to TF32 (10-bit mantissa), undeclared.
    Small integers survive TF32 rounding, so only the bound and statistical tiers can see it."""
    return naive(to_tf32(input), to_tf32(weight), bias, stride, padding, output_padding, groups, dilation)


@register("bug-adjoint-unflipped-stride-dilation", dtypes=FLOATS)
def unflipped(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Fault class 11 (jax #14337), in the stride>1 & dilation>1 region: the kernel is applied
    reversed, a different linear map, so the adjoint identity breaks."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if any(s > 1 and d > 1 for s, d in zip(geometry.stride, geometry.dilation)):
        weight = weight.flip(list(range(2, weight.dim())))
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("bug-errors-accepts-big-output-padding", dtypes=FLOATS)
def accepts_big_output_padding(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                               dilation=1):
    """Fault class 13 (MPS #169236): the output_padding < max(stride, dilation) check is missing."""
    try:
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    except spec.InvalidProblem as exc:
        if "output_padding" not in str(exc):
            raise
    dims = weight.dim() - 2
    # Pretend the stride allowed it: compute with a stride large enough, then keep going.
    op = spec.as_tuple(output_padding, dims, "output_padding")
    s = spec.as_tuple(stride, dims, "stride")
    return naive(input, weight, bias, tuple(max(a, b + 1) for a, b in zip(s, op)), padding, output_padding,
                 groups, dilation)


@register("bug-errors-refuses-op-ge-stride", dtypes=FLOATS)
def refuses_op_ge_stride(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1):
    """ONNX Runtime's domain: refuses output_padding >= stride even where dilation allows it."""
    dims = weight.dim() - 2
    if any(op >= s for op, s in zip(spec.as_tuple(output_padding, dims, "output_padding"),
                                    spec.as_tuple(stride, dims, "stride"))):
        raise ValueError("output_padding must be smaller than stride")
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("bug-robust-modifies-input", dtypes=FLOATS)
def modifies_input(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """An in-place 'optimisation' that reuses the input buffer when the kernel is 1x1."""
    result = naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if all(k == 1 for k in weight.shape[2:]) and input.numel():
        input.mul_(2)
    return result


@register("bug-robust-assumes-contiguous", dims=(2, 3), dtypes=FLOATS)
def assumes_contiguous(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
    """Fault class 18 (#4500, #3512): reads the weight's storage as if it were contiguous."""
    raw = torch.as_strided(weight, weight.shape, torch.empty(weight.shape).stride(), weight.storage_offset())
    return naive(input, raw, bias, stride, padding, output_padding, groups, dilation)


@register("bug-robust-nan-through-padding", dtypes=FLOATS)
def nan_through_padding(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                        dilation=1):
    """Fault class 16 (#165744): the zero-insertion algorithm under a name with no expectation."""
    return zero_insertion(input, weight, bias, stride, padding, output_padding, groups, dilation)


_calls = [0]


@register("bug-robust-nondeterministic", dtypes=FLOATS)
def nondeterministic(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Fault class 17: every other call, one element comes out one ulp higher (as an atomic
    accumulation order would), while the implementation declares itself deterministic."""
    _calls[0] += 1
    result = naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if _calls[0] % 2 and result.numel():
        flat = result.view(-1)
        flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf"), dtype=flat.dtype))
    return result


_CALLS = [0]


@register("bug-flaky-exact", dims=(1,), dtypes=("float32",))
def flaky_exact(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Wrong on the first call with two or more input positions, right on every later call: a result
    that depends on state (uninitialized memory, a race), which a replay may not meet again."""
    result = naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if input.shape[-1] >= 2:
        _CALLS[0] += 1
        if _CALLS[0] == 1:
            result = result + 1
    return result


@register("bug-two-kinds", dims=(1,), dtypes=("float32",))
def two_kinds(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Two faults of different kinds: it refuses every grouped problem, and is off by one wherever the
    stride is above 1. Each must be shrunk and reported on its own, not as one failure."""
    if groups > 1:
        raise NotImplementedError("groups > 1")
    result = naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return result + 1 if spec.per_axis(stride, 1)[0] > 1 else result


def _without_rule(rule: str, input, weight, bias, stride, padding, output_padding, groups, dilation) -> None:
    """Validate as the contract does, except for the one rule the planted bug skips."""
    try:
        spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    except spec.InvalidProblem as refused:
        if rule not in str(refused):
            raise


@register("bug-garbage-bias-broadcast", dtypes=FLOATS)
def bias_broadcast(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A bias of the wrong length is not refused but broadcast into extra output channels: the caller
    gets a tensor of another shape than the formula's, silently."""
    _without_rule("bias must have shape", input, weight, bias, stride, padding, output_padding, groups, dilation)
    y = naive(input, weight, None, stride, padding, output_padding, groups, dilation)
    if bias is None:
        return y
    channel_axis = 1 if input.dim() == weight.dim() else 0
    extra = bias.numel() - y.shape[channel_axis]
    if extra > 0:
        pad = list(y.shape)
        pad[channel_axis] = extra
        y = torch.cat([y, y.new_zeros(pad)], dim=channel_axis)
    lengths = [1] * y.dim()
    lengths[channel_axis] = -1
    return y + bias[: y.shape[channel_axis]].reshape(lengths) if extra < 0 else y + bias.reshape(lengths)


@register("bug-garbage-empty-input", dtypes=FLOATS)
def empty_input_garbage(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """An input with a zero-length spatial axis is accepted and answered with memory the kernel never
    wrote (simulated by fresh random values on every call)."""
    dims = weight.dim() - 2
    if 0 not in input.shape[-dims:]:
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    lead = (input.shape[0],) if input.dim() == weight.dim() else ()
    lengths = tuple(max(0, spec.output_length(L, k, s, p, op, d)) for L, k, s, p, op, d in zip(
        input.shape[-dims:], weight.shape[2:], *(spec.per_axis(v, dims) for v in (
            stride, padding, output_padding, dilation))))
    return torch.randn(lead + (weight.shape[1] * groups,) + lengths, dtype=input.dtype)
