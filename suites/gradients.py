"""Gradients of a transposed convolution: what an implementation's backward computes, the float64
definition it must match, and the term counts and magnitudes behind the allowances.

``y = convT(x, w) + b`` is bilinear in ``(x, w)``, so with ``g`` the gradient of the output:

- ``grad_input = conv(g, w)`` (the adjoint: the ordinary convolution with the same stride, padding,
  dilation and groups, cut to the input's size),
- ``grad_weight[ci, co] = sum over batch and positions of x[ci] * g[co]`` at the offsets of each tap,
- ``grad_bias = sum of g`` over batch and positions.

Each is a sum of products, like the forward call, so the same error model applies: the reference is
the float64 definition (``impls.naive.reference``) differentiated by autograd, ``M`` is that
derivative evaluated at the absolute values (every coefficient of a convolution is 0 or 1, so this is
the sum of the terms' magnitudes) and ``K`` the derivative at all-ones inputs (the number of terms).
Double backward differentiates ``<grad_input, v_in> + <grad_weight, v_weight>`` once more, to
``(x, w, g)``; the same three quantities follow the same way.

The two procedures here are plain functions of ``(fn, tensors, kwargs, ...)`` so that a worker process
of a contained implementation can run them as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from convt_conformance.reference import reference

from . import oracles

FIRST = ("input", "weight", "bias")  # the gradients of one backward pass
SECOND = ("input", "weight", "grad_output")  # double backward: derivatives of the first gradients' probe


class NotDifferentiable(Exception):
    """The implementation's output carries no autograd graph back to an input that needs one."""


def _leaves(tensors) -> list[torch.Tensor | None]:
    # detach() keeps each tensor's memory layout (an expanded weight stays stride-0).
    return [None if t is None else t.detach().requires_grad_() for t in tensors]


def _gradients(outputs: torch.Tensor, leaves: list, grad_outputs, create_graph: bool) -> list:
    wanted = [t for t in leaves if t is not None]
    if not outputs.requires_grad:
        raise NotDifferentiable("the output does not require grad: no autograd graph reaches the inputs")
    found = iter(torch.autograd.grad(outputs, wanted, grad_outputs, create_graph=create_graph, allow_unused=True))
    return [None if t is None else next(found) for t in leaves]


Flags = Callable[[], AbstractContextManager] | None


def first_gradients(fn: Callable, tensors, kwargs: dict, grad_output: torch.Tensor,
                    flags: Flags = None) -> dict[str, torch.Tensor]:
    """``{input, weight, bias}`` gradients of ``fn(*tensors, **kwargs)`` for ``grad_output`` (a
    gradient that is None where an input needs one is returned as None: the check reports it).
    ``flags`` (an implementation's declared backend switches) hold for the forward and the backward."""
    leaves = _leaves(tensors)
    with (flags or nullcontext)():
        grads = _gradients(fn(*leaves, **kwargs), leaves, grad_output, create_graph=False)
    return {name: grad for name, leaf, grad in zip(FIRST, leaves, grads) if leaf is not None}


def output_and_gradients(fn: Callable, tensors, kwargs: dict, grad_output: torch.Tensor,
                         flags: Flags = None) -> dict[str, torch.Tensor]:
    """The forward's ``output`` and the gradients of :func:`first_gradients` from that same call."""
    leaves = _leaves(tensors)
    with (flags or nullcontext)():
        output = fn(*leaves, **kwargs)
        grads = _gradients(output, leaves, grad_output, create_graph=False)
    return {"output": output.detach(), **{name: grad for name, leaf, grad in zip(FIRST, leaves, grads)
                                          if leaf is not None}}


def second_gradients(fn: Callable, tensors, kwargs: dict, grad_output: torch.Tensor,
                     probes: tuple[torch.Tensor, torch.Tensor], flags: Flags = None) -> dict[str, torch.Tensor]:
    """Double backward: the gradients of ``<grad_input, probes[0]> + <grad_weight, probes[1]>`` with
    respect to the input, the weight and ``grad_output`` (bias-free: its gradient is constant)."""
    x, w = _leaves(tensors[:2])
    g = grad_output.detach().requires_grad_()
    with (flags or nullcontext)():
        y = fn(x, w, None, **kwargs)
        grad_input, grad_weight = _gradients(y, [x, w], g, create_graph=True)
        if grad_input is None or grad_weight is None:
            raise NotDifferentiable("the backward returned no input or weight gradient")
        probe = (grad_input * probes[0]).sum() + (grad_weight * probes[1]).sum()
        probe = probe.real if probe.is_complex() else probe  # a real loss: autograd's convention for complex
        return dict(zip(SECOND, _gradients(probe, [x, w, g], None, create_graph=False)))


PROCEDURES = {"first": first_gradients, "second": second_gradients, "output-and-first": output_and_gradients}


# -- the float64 definition ---------------------------------------------------------------------
def _wide(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else oracles.widen(t)


def _size(t: torch.Tensor | None) -> torch.Tensor | None:
    """``|re| + |im|`` (or ``|t|``) in float64: evaluated there, a derivative sums its terms' magnitudes."""
    return None if t is None else oracles.magnitude_of(oracles.widen(t))


def _ones(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else torch.ones(t.shape, dtype=torch.float64)


def reference_first(tensors, kwargs: dict, grad_output: torch.Tensor) -> dict[str, torch.Tensor]:
    return first_gradients(reference, [_wide(t) for t in tensors], kwargs, _wide(grad_output))


def reference_second(tensors, kwargs: dict, grad_output: torch.Tensor,
                     probes: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
    return second_gradients(reference, [_wide(t) for t in tensors], kwargs, _wide(grad_output),
                            tuple(_wide(p) for p in probes))


def magnitudes_first(tensors, kwargs: dict, grad_output: torch.Tensor) -> dict[str, torch.Tensor]:
    """``M`` per gradient: the sum of its terms' magnitudes, float64."""
    return first_gradients(reference, [_size(t) for t in tensors], kwargs, _size(grad_output))


def counts_first(tensors, kwargs: dict, grad_output: torch.Tensor) -> dict[str, torch.Tensor]:
    """``K`` per gradient: how many terms the definition sums into each element, float64."""
    return first_gradients(reference, [_ones(t) for t in tensors], kwargs, _ones(grad_output))


def sizes_second(tensors, kwargs: dict, grad_output: torch.Tensor,
                 probes: tuple[torch.Tensor, torch.Tensor]) -> tuple[dict, dict]:
    M = second_gradients(reference, [_size(t) for t in tensors], kwargs, _size(grad_output),
                         tuple(_size(p) for p in probes))
    K = second_gradients(reference, [_ones(t) for t in tensors], kwargs, _ones(grad_output),
                         tuple(_ones(p) for p in probes))
    return M, K
