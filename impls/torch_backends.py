"""PyTorch's own kernels, each registered under a name that states the backend it forces.

These are what the suite checks, not references: they call ``torch.nn.functional.conv_transposeNd``
with backend flags set for the duration of the call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager

import torch
import torch.nn.functional as F

from .. import spec
from .registry import register

_TRANSPOSED = {3: F.conv_transpose1d, 4: F.conv_transpose2d, 5: F.conv_transpose3d}
# Measured (see README): PyTorch's CPU kernels sum the per-tap columns (col2im) of float16/bfloat16
# problems in the half type itself, not in float32.
CPU_HALF_ACCUMULATION = {"float16": "float16", "bfloat16": "bfloat16"}
_CUDA_DTYPES = ("float64", "float32", "float16", "bfloat16", "complex64", "complex128")


def functional(input, weight, bias, stride, padding, output_padding, groups, dilation):
    """``F.conv_transposeNd`` for the weight's dims (what every PyTorch entry point here calls)."""
    functional = _TRANSPOSED.get(weight.dim())
    if functional is None:
        raise ValueError(f"weight must have 3, 4 or 5 dimensions, got {weight.dim()}")
    return functional(input, weight, bias, stride, padding, output_padding, groups, dilation)


def _with_flags(flags: Callable[[], ContextManager]) -> Callable:
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
        with flags():
            return functional(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return conv_transpose


@contextlib.contextmanager
def _onednn(enabled: bool) -> Iterator[None]:
    # torch.backends.mkldnn.flags() also resets oneDNN's TF32 switch (and warns); touch only this one.
    previous = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(enabled)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(previous)


# The gradient checks differentiate under the same switches (``flags``): the backward is PyTorch's too.
register("torch-cpu-default", devices=("cpu",), dtypes=spec.ALL_DTYPES, accumulation=CPU_HALF_ACCUMULATION,
         grad=True, double_backward=True, flags=lambda: _onednn(True),
         description="torch CPU, default dispatch (oneDNN enabled)")(
    _with_flags(lambda: _onednn(True)))

register("torch-cpu-native", devices=("cpu",), dtypes=spec.ALL_DTYPES, accumulation=CPU_HALF_ACCUMULATION,
         grad=True, double_backward=True, flags=lambda: _onednn(False),
         description="torch CPU with oneDNN disabled (ATen's slow_conv_transpose)")(
    _with_flags(lambda: _onednn(False)))


@register("torch-cpu-channels-last", dims=(2, 3), devices=("cpu",), dtypes=spec.ALL_DTYPES,
          accumulation=CPU_HALF_ACCUMULATION, grad=True, double_backward=True, flags=lambda: _onednn(True),
          description="torch CPU, default dispatch, input and weight converted to channels_last")
def channels_last(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                  dilation=1):
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(weight.dim())
    unbatched = input.dim() == weight.dim() - 1
    x = input.unsqueeze(0) if unbatched else input
    if fmt is not None and x.dim() == weight.dim():
        x, weight = x.to(memory_format=fmt), weight.to(memory_format=fmt)
    with _onednn(True):
        result = functional(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return result[0] if unbatched else result


def _cudnn_flags() -> ContextManager:
    # PyTorch's defaults: cuDNN on, TF32 allowed for convolutions, benchmark mode off.
    return torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=False,
                                      allow_tf32=True)


def _cuda_native_flags() -> ContextManager:
    stack = contextlib.ExitStack()
    stack.enter_context(torch.backends.cudnn.flags(enabled=False))
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # the native path's GEMMs stay IEEE float32
    stack.callback(setattr, torch.backends.cuda.matmul, "allow_tf32", previous)
    return stack


# cuDNN's heuristics may pick an FFT, FFT-tiling or Winograd algorithm for the backward-data
# convolution PyTorch runs here; NVIDIA documents those for float and half data, never for double.
_CUDNN_TRANSFORMS = {"float32": "transform", "float16": "transform", "complex64": "transform"}

register("torch-cuda-cudnn", devices=("cuda",), dtypes=_CUDA_DTYPES, deterministic=False, tf32=True,
         algorithm=_CUDNN_TRANSFORMS, grad=True, double_backward=True, flags=_cudnn_flags,
         description="torch CUDA through cuDNN with PyTorch's defaults (TF32 allowed for float32; "
                     "FFT/Winograd algorithms possible for float32, float16, complex64)")(
    _with_flags(_cudnn_flags))

register("torch-cuda-native", devices=("cuda",), dtypes=_CUDA_DTYPES, deterministic=False,
         grad=True, double_backward=True, flags=_cuda_native_flags,
         description="torch CUDA with cuDNN disabled (ATen's slow_conv_transpose, IEEE float32 GEMMs)")(
    _with_flags(_cuda_native_flags))
