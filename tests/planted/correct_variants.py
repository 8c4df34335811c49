"""Correct implementations with other rounding behaviour: the suite must never flag them."""

from __future__ import annotations

import itertools

import torch

from convt_conformance import register, spec
from convt_conformance.impls.naive import conv_transpose as naive
from convt_conformance.reference import batched, finish
from tests.planted.fft import fft_conv_transpose
from tests.planted.rounding import to_tf32

ALL = spec.ALL_DTYPES


@register("correct-float64-rounded-once", dtypes=ALL)
def float64_once(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Everything in float64 (complex128), rounded once to the input's dtype."""
    spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    wide = torch.complex128 if input.is_complex() else torch.float64
    result = naive(input.to(wide), weight.to(wide), None if bias is None else bias.to(wide), stride, padding,
                   output_padding, groups, dilation)
    return result.to(input.dtype)


@register("correct-reversed-order", dtypes=ALL)
def reversed_order(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The definition with taps visited last to first and input channels summed one at a time,
    from the last: a different summation order."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    acc = spec.accumulation_dtype(input.dtype)
    x = batched(input, geometry).to(acc)
    w = weight.to(acc)
    n, cin_g, cout_g = x.shape[0], geometry.in_channels_per_group, geometry.out_channels_per_group
    full = torch.zeros((n, geometry.out_channels) + geometry.full_size(), dtype=acc, device=x.device)
    taps = list(itertools.product(*(range(k) for k in geometry.kernel_size)))
    for tap in reversed(taps):
        landing = tuple(slice(t * d, t * d + (L - 1) * s + 1, s) for t, d, L, s in zip(
            tap, geometry.dilation, geometry.input_size, geometry.stride))
        for g in range(geometry.groups):
            for ci in reversed(range(g * cin_g, (g + 1) * cin_g)):
                w_tap = w[(ci, slice(None)) + tap]  # (Cout/g,)
                products = x[:, ci:ci + 1] * w_tap.reshape((1, cout_g) + (1,) * geometry.dims)
                full[(slice(None), slice(g * cout_g, (g + 1) * cout_g)) + landing] += products
    window = tuple(slice(p, p + o) for p, o in zip(geometry.padding, geometry.output_size))
    return finish(full[(slice(None),) * 2 + window], bias, geometry, input.dtype)


# Its backward kernel multiplies structural zeros by the weights, so NaN and Inf spread as in zero insertion:
# correct arithmetic that does not claim IEEE inf/NaN semantics.
@register("correct-autograd-of-convolution", dtypes=("float64", "float32", "complex128", "complex64"),
          special_values=False)
def autograd_of_convolution(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                            dilation=1):
    """The transpose of the forward convolution, by autograd: the vector-Jacobian product of
    conv(z, weight) with ``input`` as the cotangent."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}
    x = batched(input, geometry)
    z = torch.zeros((x.shape[0], geometry.out_channels) + geometry.output_size, dtype=input.dtype,
                    device=input.device, requires_grad=True)
    # Autograd gives the conjugate transpose A^H g; the transposed convolution is A^T x = conj(A^H conj(x)).
    cotangent = x.detach().conj() if input.is_complex() else x.detach()
    with torch.enable_grad():
        out = conv[geometry.dims](z, weight.detach(), None, geometry.stride, geometry.padding,
                                  geometry.dilation, geometry.groups)
        window = (slice(None), slice(None)) + tuple(slice(0, L) for L in geometry.input_size)
        (grad,) = torch.autograd.grad(out[window], z, grad_outputs=cotangent.resolve_conj(), allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(z)
    grad = grad.detach().conj().resolve_conj() if input.is_complex() else grad.detach()
    return finish(grad, bias, geometry, input.dtype)


@register("correct-bias-after-rounding", dtypes=ALL)
def bias_after_rounding(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The convolution rounded to the input's dtype, then the bias added in that dtype (as PyTorch
    and OpenVINO do): two roundings, both within the allowance."""
    spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    result = naive(input, weight, None, stride, padding, output_padding, groups, dilation)
    if bias is None:
        return result
    return result + bias.reshape((-1,) + (1,) * (weight.dim() - 2))


@register("correct-tf32-declared", dtypes=("float32",), tf32=True)
def tf32_declared(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Float32 inputs rounded to TF32 on the CPU, declared with ``tf32=True``."""
    return naive(to_tf32(input), to_tf32(weight), bias, stride, padding, output_padding, groups, dilation)


@register("correct-products-rounded", dtypes=("float16", "bfloat16"),
          products={"float16": "float16", "bfloat16": "bfloat16"})
def products_rounded(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Each product rounded to the half type, the products summed in float32 (tinygrad's bfloat16)."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    x = batched(input, geometry).float()
    n, g = x.shape[0], geometry.groups
    cin_g, cout_g = geometry.in_channels_per_group, geometry.out_channels_per_group
    x_groups = x.reshape((n, g, cin_g, 1) + geometry.input_size)
    w = weight.float().reshape((g, cin_g, cout_g) + geometry.kernel_size)
    full = torch.zeros((n, g, cout_g) + geometry.full_size(), dtype=torch.float32, device=x.device)
    spatial = (1,) * geometry.dims
    for tap in itertools.product(*(range(k) for k in geometry.kernel_size)):
        w_tap = w[(slice(None),) * 3 + tap].reshape((1, g, cin_g, cout_g) + spatial)
        products = (x_groups * w_tap).to(input.dtype).float().sum(dim=2)  # (n, g, Cout/g, *L)
        landing = tuple(slice(t * d, t * d + (L - 1) * s + 1, s) for t, d, L, s in zip(
            tap, geometry.dilation, geometry.input_size, geometry.stride))
        full[(slice(None),) * 3 + landing] += products
    window = tuple(slice(p, p + o) for p, o in zip(geometry.padding, geometry.output_size))
    result = full[(slice(None),) * 3 + window].reshape((n, geometry.out_channels) + geometry.output_size)
    return finish(result, bias, geometry, input.dtype)


register("correct-fft", dtypes=ALL, algorithm="transform",
         description="FFT-based, declared as a transform algorithm")(fft_conv_transpose)


@register("correct-3d-only", dims=(3,), dtypes=("float32",))
def three_d_only(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A narrow plugin: 3d problems in float32 only."""
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("correct-bfloat16-only", dtypes=("bfloat16",))
def bfloat16_only(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A narrow plugin: one dtype."""
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("correct-complex-only", dtypes=("complex64", "complex128"))
def complex_only(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A narrow plugin: complex dtypes only."""
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
