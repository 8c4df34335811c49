"""Shape inference as implementations: PyTorch's meta kernels and FakeTensor, which compute an output's
shape, dtype and strides without any values. Exported and compiled programs are traced this way, so a
shape function that disagrees with the real kernel (#98129, #172711) breaks them. Registered with
``shape_only=True``: the suite checks their shapes and that they raise exactly where the contract says
a problem is invalid, and runs no value check on them."""

from __future__ import annotations

import torch.nn.functional as F

from . import spec
from .registry import register

_TRANSPOSED = {3: F.conv_transpose1d, 4: F.conv_transpose2d, 5: F.conv_transpose3d}


def _call(input, weight, bias, stride, padding, output_padding, groups, dilation):
    functional = _TRANSPOSED.get(weight.dim())
    if functional is None:
        raise ValueError(f"weight must have 3, 4 or 5 dimensions, got {weight.dim()}")
    return functional(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("torch-meta", devices=("meta",), dtypes=spec.ALL_DTYPES, shape_only=True,
          description="torch's meta kernels: tensors on the meta device, shapes only")
def meta(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _call(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("torch-fake", devices=("cpu",), dtypes=spec.ALL_DTYPES, shape_only=True,
          description="torch's FakeTensor mode (how torch.export and torch.compile trace), shapes only")
def fake(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        tensors = [None if t is None else mode.from_tensor(t) for t in (input, weight, bias)]
        return _call(*tensors, stride, padding, output_padding, groups, dilation)
