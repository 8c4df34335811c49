"""A runtime that compiles the weights into its program, as an ahead-of-time exported program or a mobile
delegate does: each new (shape, weight) costs a compilation (simulated: COMPILE_SECONDS), and a compiled
program is reused for new inputs. Registered twice: declaring ``fixed_weights`` (the weights of each
geometry come from two values) and not (new weights every example, a compilation each)."""

from __future__ import annotations

import hashlib
import os
import time

import torch

from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose as naive

COMPILE_SECONDS = float(os.environ.get("CONVT_SIMULATED_COMPILE_SECONDS", "0.25"))
_programs: set[tuple] = set()


def _signature(input, weight, bias, *geometry) -> tuple:
    digest = hashlib.sha256(weight.detach().cpu().contiguous().numpy().tobytes())
    if bias is not None:
        digest.update(bias.detach().cpu().contiguous().numpy().tobytes())
    return (tuple(input.shape), tuple(input.stride()), tuple(weight.shape), str(input.dtype), digest.hexdigest(),
            repr(geometry))


def compiled_weights_runtime(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                             dilation=1):
    signature = _signature(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if signature not in _programs:  # a new program: compile it (with the weights in it)
        time.sleep(COMPILE_SECONDS)
        _programs.add(signature)
    with torch.no_grad():
        return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


register("compiled-weights-runtime", dtypes=("float32",), fixed_geometries=True, fixed_weights=2,
         description="compiles each (shape, weights) into a program; declares fixed_weights=2")(
    compiled_weights_runtime)
register("compiled-weights-runtime-undeclared", dtypes=("float32",), fixed_geometries=True,
         description="the same runtime without fixed_weights: new weights, a new program, every example")(
    compiled_weights_runtime)
