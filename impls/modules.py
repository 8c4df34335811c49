"""``nn.ConvTranspose{1,2,3}d`` as an entry point, and :func:`register_module` for anyone's module class.

A module implementation is called like every other (``fn(input, weight, bias, stride, ...)``), so the
whole forward suite and the gradient checks run on it; it also takes ``output_size``, which the module
turns into an output_padding, and its class is kept for the module checks (parameter shapes, padding
modes, every valid ``output_size``). The module is built on the meta device, so no parameters are
initialised, and called with the problem's tensors as its parameters (``torch.func.functional_call``):
the weight keeps its memory layout and gradients reach it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping

import torch
from torch import nn

from .registry import ConvTransposeFn, register

MODULE_CLASSES: dict[int, type[nn.Module]] = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def build(classes: Mapping[int, type[nn.Module]], weight_shape: tuple[int, ...], bias: bool, stride=1, padding=0,
          output_padding=0, groups: int = 1, dilation=1, padding_mode: str = "zeros",
          dtype: torch.dtype | None = None) -> nn.Module:
    """The module a user would build for this weight: ``in_channels = weight.shape[0]``,
    ``out_channels = weight.shape[1] * groups``, on the meta device."""
    dims = len(weight_shape) - 2
    if dims not in classes:
        raise ValueError(f"no module class for {dims}d (weight of shape {tuple(weight_shape)})")
    with warnings.catch_warnings():  # an empty weight's initialisation warns; the module is built all the same
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        return classes[dims](weight_shape[0], weight_shape[1] * groups, tuple(weight_shape[2:]), stride, padding,
                             output_padding, groups, bias, dilation, padding_mode, device="meta", dtype=dtype)


def module_entry(classes: Mapping[int, type[nn.Module]]) -> ConvTransposeFn:
    """The implementation function of a module class: build it, call it with the tensors as parameters."""

    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                       output_size=None):
        module = build(classes, tuple(weight.shape), bias is not None, stride, padding, output_padding, groups,
                       dilation, dtype=weight.dtype)
        parameters = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
        arguments = (input,) if output_size is None else (input, output_size)
        return torch.func.functional_call(module, parameters, arguments)

    return conv_transpose


def register_module(name: str, classes: Mapping[int, type[nn.Module]], **declarations: object) -> Callable:
    """Register a transposed-convolution module class (one per dims, with ``nn.ConvTranspose2d``'s
    constructor and ``forward(input, output_size=None)``) under ``name``. ``declarations`` are
    :func:`impls.register`'s; ``dims`` defaults to the classes given."""
    declarations.setdefault("dims", tuple(sorted(classes)))
    declarations.setdefault("registered_by", sys._getframe(1).f_globals.get("__name__", "?"))
    return register(name, module_classes=dict(classes), **declarations)(module_entry(classes))


register_module("torch-module", MODULE_CLASSES, devices=("cpu",), dtypes=("float64", "float32"), grad=True,
                double_backward=True, description="torch.nn.ConvTranspose{1,2,3}d (forward(input, output_size))")
