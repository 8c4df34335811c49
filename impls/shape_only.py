"""Shape inference as implementations: PyTorch's meta kernels and FakeTensor, which compute an output's
shape, dtype and strides without any values. Exported and compiled programs are traced this way, so a
shape function that disagrees with the real kernel (#98129, #172711) breaks them. Registered with
``shape_only=True``: the suite checks their shapes and that they raise exactly where the contract says
a problem is invalid, and runs no value check on them."""

from __future__ import annotations

from .. import spec
from .registry import register
from .torch_backends import functional


@register("torch-meta", devices=("meta",), dtypes=spec.ALL_DTYPES, shape_only=True,
          description="torch's meta kernels: tensors on the meta device, shapes only")
def meta(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return functional(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("torch-fake", devices=("cpu",), dtypes=spec.ALL_DTYPES, shape_only=True,
          description="torch's FakeTensor mode (how torch.export and torch.compile trace), shapes only")
def fake(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        tensors = [None if t is None else mode.from_tensor(t) for t in (input, weight, bias)]
        return functional(*tensors, stride, padding, output_padding, groups, dilation)
