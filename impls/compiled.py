"""``torch.compile`` (TorchDynamo and Inductor) as an implementation: the compiled program's values, shapes
and refusals, not just eager PyTorch's. A compiled program traces with FakeTensor shapes, may pick its
own memory layouts (#184026) and may lose a check eager makes (#144013).

Each new geometry, dtype or layout costs a compilation (about a second on a CPU core), so it is
registered with ``fixed_geometries=True``: the checks draw a few fixed geometries with new values each
time, and every compiled graph is reused. The recompile limit is lifted for the call and hitting it is
an error, so the checks never run eager PyTorch by mistake.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .registry import register
from .torch_backends import functional

RECOMPILE_LIMIT = 100_000
_compiled: Callable | None = None


def _program() -> Callable:
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(functional, backend="inductor", fullgraph=True, dynamic=False)
    return _compiled


@register("torch-compile", devices=("cpu",), dtypes=("float32",), fixed_geometries=True,
          description="torch.compile(F.conv_transposeNd), Inductor on the CPU, static shapes")
def compiled(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if weight.dim() not in (3, 4, 5):  # checked before tracing: dynamo would compile the raise
        raise ValueError(f"weight must have 3, 4 or 5 dimensions, got {weight.dim()}")
    with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT, fail_on_recompile_limit_hit=True):
        return _program()(input, weight, bias, stride, padding, output_padding, groups, dilation)
