"""``torch.compile`` (TorchDynamo and Inductor) as implementations: the compiled program's values, shapes
and refusals, not just eager PyTorch's. A compiled program traces with FakeTensor shapes, may pick its
own memory layouts (#184026) and may lose a check eager makes (#144013). Three ways users reach it:

- ``torch-compile``: the functional call compiled, in float32 and the half types;
- ``torch-compile-epilogue``: the call with its bias added afterwards and an activation, which Inductor
  fuses into one pointwise kernel after the convolution (the epilogue is an exact identity of the result,
  ``relu(y) - relu(-y) == y``, so the contract is unchanged);
- ``torch-compile-freezing``: an ``nn.ConvTranspose`` module compiled for inference with Inductor's
  ``freezing``, which folds the parameters into the program and sends the layer to oneDNN's prepacked
  transposed convolution.

Each new geometry, dtype or layout costs a compilation (about a second on a CPU core), so they are
registered with ``fixed_geometries=True``: the checks draw a few fixed geometries with new values each
time, and every compiled graph is reused. Freezing bakes the weights into the program, so that one
compiles per weight (a fifth of a second once warm). The recompile limit is lifted for the call and
hitting it is an error, so the checks never run eager PyTorch by mistake. All three run PyTorch's CPU
kernels underneath (``built_on``), so the known discrepancies of those apply to them too.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .modules import MODULE_CLASSES, build
from .registry import register
from .torch_backends import CPU_HALF_ACCUMULATION, functional

RECOMPILE_LIMIT = 100_000
DTYPES = ("float32", "float16", "bfloat16")
_compiled: dict[str, Callable] = {}


def _program(name: str, fn: Callable) -> Callable:
    if name not in _compiled:
        _compiled[name] = torch.compile(fn, backend="inductor", fullgraph=True, dynamic=False)
    return _compiled[name]


def _checked_weight(weight: torch.Tensor) -> None:
    if weight.dim() not in (3, 4, 5):  # checked before tracing: dynamo would compile the raise
        raise ValueError(f"weight must have 3, 4 or 5 dimensions, got {weight.dim()}")


def _lifted_limit():
    # both the per-frame limit and the limit over every frame: three dtypes, layouts and the corpus recompile often
    return torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT, accumulated_recompile_limit=RECOMPILE_LIMIT,
                                      fail_on_recompile_limit_hit=True)


@register("torch-compile", devices=("cpu",), dtypes=DTYPES, accumulation=CPU_HALF_ACCUMULATION,
          fixed_geometries=True, built_on="torch-cpu-default",
          description="torch.compile(F.conv_transposeNd), Inductor on the CPU, static shapes")
def compiled(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    _checked_weight(weight)
    with _lifted_limit():
        return _program("plain", functional)(input, weight, bias, stride, padding, output_padding, groups, dilation)


def _checked_bias(weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> None:
    """The epilogue adds the bias itself, by broadcasting: a bias of the wrong length must be refused first."""
    if bias is not None and tuple(bias.shape) != (weight.shape[1] * groups,):
        raise ValueError(f"bias of shape {tuple(bias.shape)}, expected ({weight.shape[1] * groups},)")


def _with_epilogue(input, weight, bias, stride, padding, output_padding, groups, dilation):
    y = functional(input, weight, None, stride, padding, output_padding, groups, dilation)
    if bias is not None:
        y = y + bias.reshape((-1,) + (1,) * (weight.dim() - 2))
    return torch.relu(y) - torch.relu(-y)  # exactly y, as one fused pointwise kernel


@register("torch-compile-epilogue", devices=("cpu",), dtypes=DTYPES, accumulation=CPU_HALF_ACCUMULATION,
          fixed_geometries=True, built_on="torch-cpu-default",
          description="torch.compile of the call with its bias and an activation fused after it (Inductor)")
def compiled_with_epilogue(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    _checked_weight(weight)
    _checked_bias(weight, bias, groups if isinstance(groups, int) else 1)
    with _lifted_limit():
        return _program("epilogue", _with_epilogue)(input, weight, bias, stride, padding, output_padding, groups,
                                                    dilation)


@register("torch-compile-freezing", devices=("cpu",), dtypes=("float32",),
          accumulation=CPU_HALF_ACCUMULATION, fixed_geometries=True, built_on="torch-cpu-default",
          description="an nn.ConvTranspose module compiled for inference with Inductor's freezing (prepacked oneDNN)")
def compiled_frozen(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    _checked_weight(weight)
    if weight.dim() - 2 not in MODULE_CLASSES:
        raise ValueError(f"no module class for weight of shape {tuple(weight.shape)}")
    module = build(MODULE_CLASSES, tuple(weight.shape), bias is not None, stride, padding, output_padding, groups,
                   dilation, dtype=weight.dtype).to_empty(device="cpu").eval()
    with torch.no_grad():
        # the given tensors become the parameters as they are (copying would broadcast a bias of the wrong length);
        # they are folded into the program: one compilation per weight
        module.weight = torch.nn.Parameter(weight.detach(), requires_grad=False)
        if bias is not None:
            module.bias = torch.nn.Parameter(bias.detach(), requires_grad=False)
        with _lifted_limit(), torch._inductor.config.patch(freezing=True):
            torch._dynamo.reset()  # a frozen program of earlier weights must not be reused
            return torch.compile(module, backend="inductor", fullgraph=True, dynamic=False)(input)
