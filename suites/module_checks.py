"""The module checks, for implementations registered with a module class (``impls.register_module``).

``forward(input, output_size=...)``: every output size the contract allows (each axis from the formula's
length with output_padding 0 up to ``max(stride, dilation) - 1`` more), given as the spatial sizes or
with the leading dimensions, batched and unbatched, must give that shape and the definition's values;
sizes outside the range and lists of the wrong length must raise. The constructor must give the
contract's parameter shapes and refuse padding modes other than zeros (the contract has no others).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import torch

from convt_conformance import spec
from convt_conformance.impls.modules import build
from convt_conformance.reference import reference

from . import oracles
from .case import Case
from .checks import CallFailed, check, raised, valid
from .containment import ContainmentError
from .evaluation import Evaluation
from .problem import Problem

MAX_SIZE_COMBINATIONS = 32  # beyond this, a set of combinations that still gives every axis every size


def _is_module(case: Case) -> str | None:
    if not case.impl.extra.get("module_classes"):
        return f"{case.impl.name} is not a module class"
    if case.precision.transform:
        return f"{case.impl.name} declares a transform algorithm for {case.dtype_name}: no exact tier"
    return None


def shortest_lengths(evaluation: Evaluation) -> tuple[int, ...]:
    """Per axis, the formula's output length with output_padding 0 (it may be below 1)."""
    geometry = evaluation.geometry
    return spec.output_size(geometry.input_size, geometry.kernel_size, geometry.stride, geometry.padding,
                            (0,) * geometry.dims, geometry.dilation)


def size_ranges(problem: Problem, shortest: tuple[int, ...]) -> list[range]:
    """Per axis, every output length the contract allows, from the ``shortest`` (output_padding 0)."""
    # Without output_padding an axis may have no output at all; lengths below 1 are never valid.
    return [range(max(low, 1), low + max(s, d)) for low, s, d in zip(shortest, problem.stride, problem.dilation)]


def size_combinations(ranges: list[range]) -> Iterator[tuple[int, ...]]:
    """All combinations when few, else a diagonal sweep in which every axis takes every length."""
    if math.prod(len(r) for r in ranges) <= MAX_SIZE_COMBINATIONS:
        yield from itertools.product(*ranges)
        return
    for step in range(max(len(r) for r in ranges)):
        yield tuple(r[step % len(r)] for r in ranges)


def _forward(evaluation: Evaluation, output_size: list[int]) -> torch.Tensor:
    case, problem = evaluation.case, evaluation.problem
    kwargs = {**problem.kwargs(), "output_padding": (0,) * problem.dims}
    return case.impl.fn(*evaluation.given, **kwargs, output_size=output_size)


def _requested(evaluation: Evaluation, spatial: tuple[int, ...], with_leading: bool) -> list[int]:
    lead = list(evaluation.geometry.output_shape[:-evaluation.problem.dims])
    return (lead if with_leading else []) + list(spatial)


@check("output-size", "test_output_size", valid(value_kind="int", min_batch=1), replays="int", compares_values=True,
       applies=_is_module, also_finds=("output-size-refused",))
def output_size(evaluation: Evaluation) -> oracles.Finding | None:
    """``forward(input, output_size)`` for every valid size: that shape, the definition's values
    (exactly, on small integers); out-of-range sizes and wrong lengths raise."""
    problem, dtype = evaluation.problem, evaluation.case.dtype
    shortest = shortest_lengths(evaluation)
    ranges = size_ranges(problem, shortest)
    widest = problem.replace(output_padding=tuple(max(s, d) - 1 for s, d in zip(problem.stride, problem.dilation)))
    y_widest = reference(*evaluation.values, **widest.kwargs())  # shorter outputs are its leading part
    for number, spatial in enumerate(size_combinations(ranges)):
        requested = _requested(evaluation, spatial, with_leading=number % 2 == 1)
        try:
            y = _forward(evaluation, requested)
        except ContainmentError as exc:
            raise CallFailed(exc.as_finding()) from None
        except Exception as exc:  # noqa: BLE001  (refusing a valid size is the finding)
            beyond_stride = any(n - low >= s for n, low, s in zip(spatial, shortest, problem.stride))
            return oracles.Finding("output-size-refused" if beyond_stride else "output-size",
                                   f"refused output_size={requested}, valid per axis "
                                   f"{[(r.start, r.stop - 1) for r in ranges]}: {raised(exc, 200)}")
        expected = y_widest[(...,) + tuple(slice(0, n) for n in spatial)]
        if tuple(y.shape) != tuple(expected.shape):
            return oracles.Finding("output-size", f"output_size={requested} gave shape {tuple(y.shape)}, "
                                   f"expected {tuple(expected.shape)}")
        finding = oracles.check_exact(y, expected, dtype)
        if finding is not None:
            return oracles.Finding("output-size", f"output_size={requested}: {finding.summary}", finding.details,
                                   finding.picture)
    return _out_of_range_refused(evaluation, ranges)


def _out_of_range_refused(evaluation: Evaluation, ranges: list[range]) -> oracles.Finding | None:
    """One size below and one above the range on each axis, and lists of a wrong length, must raise."""
    smallest = [r.start for r in ranges]
    # Below 1 the output would be empty: that is the "output length < 1" rule, which the error check
    # covers on every entry point; here only sizes the formula itself rules out.
    wrong = [smallest[:axis] + [n] + smallest[axis + 1:]
             for axis, r in enumerate(ranges) for n in (r.start - 1, r.stop) if n >= 1]
    lead = len(evaluation.geometry.output_shape) - evaluation.problem.dims
    wrong += [smallest[:-1], [1] * (lead + 1) + smallest] if len(smallest) > 1 else [[1] * (lead + 1) + smallest]
    for requested in wrong:
        try:
            y = _forward(evaluation, requested)
        except ContainmentError as exc:
            raise CallFailed(exc.as_finding()) from None
        except Exception:  # noqa: BLE001  (any exception is a refusal)
            continue
        return oracles.Finding("output-size", f"accepted output_size={requested} (valid per axis "
                               f"{[(r.start, r.stop - 1) for r in ranges]}, {len(ranges)} or "
                               f"{len(ranges) + lead} values) and returned shape {tuple(y.shape)}")
    return None


REFUSED_PADDING_MODES = ("reflect", "replicate", "circular")


@check("module-parameters", "test_module_parameters", valid(), applies=_is_module)
def module_parameters(evaluation: Evaluation) -> oracles.Finding | None:
    """The constructor gives weight ``(Cin, Cout/groups, *kernel)`` and bias ``(Cout,)`` (none without
    one), and refuses padding modes other than zeros."""
    problem, classes = evaluation.problem, evaluation.case.impl.extra["module_classes"]
    kwargs = problem.kwargs()
    module = build(classes, problem.weight_shape, problem.bias, **kwargs)
    weight = getattr(module, "weight", None)
    if weight is None or tuple(weight.shape) != tuple(problem.weight_shape):
        shape = None if weight is None else tuple(weight.shape)
        return oracles.Finding("module-parameters", f"weight of shape {shape}, expected {tuple(problem.weight_shape)}")
    bias = getattr(module, "bias", None)
    expected_bias = (problem.out_channels,) if problem.bias else None
    if (None if bias is None else tuple(bias.shape)) != expected_bias:
        return oracles.Finding("module-parameters", f"bias of shape {None if bias is None else tuple(bias.shape)}, "
                               f"expected {expected_bias}")
    for mode in REFUSED_PADDING_MODES:
        try:
            build(classes, problem.weight_shape, problem.bias, **kwargs, padding_mode=mode)
        except Exception:  # noqa: BLE001  (any exception is a refusal)
            continue
        return oracles.Finding("module-parameters", f"accepted padding_mode={mode!r}: the transposed "
                               f"convolution's contract has zero padding only")
    return None
