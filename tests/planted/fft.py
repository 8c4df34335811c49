"""Transposed convolution by FFT, shared by a correct variant (declared a transform) and a planted bug
(the same arithmetic declared direct)."""

from __future__ import annotations

import torch

from convt_conformance import spec
from convt_conformance.reference import batched, finish


def fft_conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                       spectra=lambda spectrum: spectrum):
    """Transposed convolution by FFT: the stride-upsampled input convolved with the dilated kernel as
    a product of spectra (``torch.fft``; half types in float32), then cropped by the padding. ``spectra``
    is applied to every spectrum and every partial sum of their products (a planted bug rounds them)."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    work = torch.complex128 if input.dtype == torch.complex128 else (
        torch.complex64 if input.is_complex() else spec.accumulation_dtype(input.dtype))
    x = batched(input, geometry).to(work)
    if x.shape[0] == 0:  # FFT libraries refuse empty transforms; an empty batch has nothing to sum
        return finish(x.new_zeros((0, geometry.out_channels) + geometry.output_size), bias, geometry, input.dtype)
    n, g, dims = x.shape[0], geometry.groups, geometry.dims
    cin_g, cout_g = geometry.in_channels_per_group, geometry.out_channels_per_group
    upsampled = x.new_zeros((n, geometry.in_channels) + tuple(
        (L - 1) * s + 1 for L, s in zip(geometry.input_size, geometry.stride)))
    upsampled[(slice(None),) * 2 + tuple(slice(None, None, s) for s in geometry.stride)] = x
    dilated = x.new_zeros(tuple(weight.shape[:2]) + tuple(
        d * (k - 1) + 1 for k, d in zip(geometry.kernel_size, geometry.dilation)))
    dilated[(slice(None),) * 2 + tuple(slice(None, None, d) for d in geometry.dilation)] = weight.to(work)
    size, axes = geometry.full_size(), tuple(range(2, 2 + dims))
    forward, inverse = (torch.fft.fftn, torch.fft.ifftn) if x.is_complex() else (torch.fft.rfftn, torch.fft.irfftn)
    X = spectra(forward(upsampled, s=size, dim=axes))
    X = X.reshape((n, g, cin_g) + tuple(X.shape[2:]))
    W = spectra(forward(dilated, s=size, dim=axes))
    W = W.reshape((g, cin_g, cout_g) + tuple(W.shape[2:]))
    Y = spectra(X[:, :, 0, None] * W[None, :, 0])  # the channel sum, rounded after each term
    for c in range(1, cin_g):
        Y = spectra(Y + spectra(X[:, :, c, None] * W[None, :, c]))
    Y = Y.reshape((n, geometry.out_channels) + tuple(W.shape[3:]))
    full = inverse(Y, s=size, dim=axes)
    window = tuple(slice(p, p + o) for p, o in zip(geometry.padding, geometry.output_size))
    return finish(full[(slice(None),) * 2 + window], bias, geometry, input.dtype)
