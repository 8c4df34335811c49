"""A valid problem prepared for the value checks: its tensors and the float64 quantities behind the
allowances, each computed once, on demand."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from convt_conformance import spec
from convt_conformance.reference import explain, plus_bias, reference_sum

from . import gradients, oracles
from .case import Case
from .problem import Problem, Tensors, sum_and_magnitude, term_count


@dataclass
class Evaluation:
    """One problem as one case sees it. ``measured`` collects what a check measured (the bound
    check's error/allowance ratios), which steers the search."""

    case: Case
    problem: Problem
    measured: dict[str, float] = field(default_factory=dict)
    refused: bool | None = None  # outside a declared domain: whether the implementation refused the problem
    answered_ahead: Any = None  # its plain call, made ahead with an example's others (checks.prepared_ahead)

    @cached_property
    def values(self) -> Tensors:
        return self.problem.tensors()

    @cached_property
    def given(self) -> Tensors:
        # copies of the values: the implementation must not be able to change what the reference sees
        return self.problem.materialize(self.case.device, values=self.values)

    @cached_property
    def geometry(self) -> spec.Geometry:
        return self.problem.geometry()

    @cached_property
    def y_ref(self) -> torch.Tensor:
        # the float64 addition the reference makes last, on the sum it already computed
        return plus_bias(self._sum, self.values.bias, self.problem.dims)

    @cached_property
    def y_ref_without_bias(self) -> torch.Tensor | None:
        """The reference before the bias is added (None without a bias)."""
        return None if self.values.bias is None else self._sum

    @cached_property
    def _sum(self) -> torch.Tensor:
        return self._sum_and_magnitude[0]

    @cached_property
    def M(self) -> torch.Tensor:
        return self._sum_and_magnitude[1]

    @cached_property
    def _sum_and_magnitude(self) -> tuple[torch.Tensor, torch.Tensor]:
        return sum_and_magnitude(self.values, self.problem)

    @cached_property
    def K(self) -> torch.Tensor:
        return term_count(self.values, self.problem)

    @cached_property
    def reached(self) -> torch.Tensor:
        """The outputs some product lands in (the others are structural zeros, or the bias)."""
        return self.K > (0 if self.values.bias is None else 1)  # K counts the bias as a term

    @cached_property
    def error_model(self) -> oracles.ErrorModel:
        """The allowances of the implementation's declared algorithm and precision."""
        prec = self.case.precision
        if not prec.transform:
            rounding = oracles.output_rounding(self.y_ref, prec, self.y_ref_without_bias)
            allowed = oracles.allowance(self.M, self.K, self.y_ref, prec, rounding=rounding)
            return oracles.DirectModel(allowed, self.M, self.K, self.case.dtype, rounding)
        x, w, _ = self.values
        x64 = oracles.widen(x if self.problem.batched else x.unsqueeze(0))
        w64, log2_n = oracles.widen(w), oracles.transform_log2_size(self.geometry.full_size())
        planes = oracles.transform_plane_allowance(x64, w64, self.problem.groups, log2_n, self.y_ref, prec,
                                                   self.y_ref_without_bias)
        typical = oracles.transform_typical(x64, w64, self.problem.groups, log2_n, self.y_ref, self.M, self.K,
                                            prec, self.y_ref_without_bias)
        return oracles.TransformModel(planes, self.problem.dims, self.M, self.K, self.case.dtype, typical)

    def vacuous_reason(self) -> str | None:
        x, w, _ = self.values
        return oracles.vacuous_reason(self.y_ref, self.reached, x, w)

    def explanation(self, index: list[int], limit: int = 12) -> str:
        """The definition's terms for one output element, as text (at most ``limit`` lines)."""
        text = explain(*self.values, index, **self.problem.kwargs()).table().splitlines()
        shown = list(itertools.islice(text, limit + 1))
        if len(text) > limit + 1:
            shown.append(f"  ... {len(text) - limit - 1} more")
        return "\n".join(shown)


class ExactEvaluation(Evaluation):
    """The exact check's evaluation: a direct kernel is held to the rounded reference alone, so the
    sum is formed without the magnitudes, which only a transform algorithm's allowance needs."""

    @cached_property
    def _sum(self) -> torch.Tensor:
        if self.case is not None and self.case.precision.transform:
            return self._sum_and_magnitude[0]
        x, w, _ = self.values
        return reference_sum(x, w, self.geometry)


class GradientEvaluation(Evaluation):
    """A valid problem prepared for the gradient checks: the output's gradient ``g`` (and the double
    backward's probes), the float64 gradients of the definition, and their term counts and magnitudes."""

    @cached_property
    def grad_output(self) -> torch.Tensor:
        return self.problem.grad_output()

    @cached_property
    def given_grad_output(self) -> torch.Tensor:
        return self.problem.materialize_grad_output(self.case.device)

    @cached_property
    def probes(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.problem.probes()

    @cached_property
    def first_reference(self) -> dict[str, torch.Tensor]:
        return gradients.reference_first(self.values, self.problem.kwargs(), self.grad_output)

    @cached_property
    def second_reference(self) -> dict[str, torch.Tensor]:
        return gradients.reference_second(self.values, self.problem.kwargs(), self.grad_output, self.probes)

    @cached_property
    def first_counts(self) -> dict[str, torch.Tensor]:
        return gradients.counts_first(self.values, self.problem.kwargs(), self.grad_output)

    @cached_property
    def first_sizes(self) -> tuple[dict, dict]:
        return gradients.magnitudes_first(self.values, self.problem.kwargs(), self.grad_output), self.first_counts

    @cached_property
    def second_sizes(self) -> tuple[dict, dict]:
        return gradients.sizes_second(self.values, self.problem.kwargs(), self.grad_output, self.probes)

    def gradient_model(self, name: str, second: bool = False) -> oracles.DirectModel:
        """The per-element allowance of one gradient (the forward's error model, with the gradient's own
        ``K`` and ``M``). Double backward adds a rounding of each term to the dtype: autograd rounds
        the two partial derivatives it adds to the tensor's type before adding them."""
        (M, K), expected = (self.second_sizes, self.second_reference) if second else \
            (self.first_sizes, self.first_reference)
        prec = self.case.precision
        allowed = oracles.allowance(M[name], K[name], expected[name], prec)
        if second:
            allowed = allowed + prec.u_out * M[name]
        return oracles.DirectModel(allowed, M[name], K[name], self.case.dtype)

    def vacuous_reason(self) -> str | None:
        reason = super().vacuous_reason()
        if reason is not None:
            return reason
        g = self.grad_output
        batched = g if self.problem.batched else g.unsqueeze(0)
        if g.numel() and ((batched != 0).transpose(0, 1).flatten(1).sum(dim=1) == 0).any():
            return "an output channel gets no gradient"
        if self.problem.value_kind == "int":  # small integers cancel exactly (random reals practically never)
            return self._cancelled_gradient()
        return None

    def _cancelled_gradient(self) -> str | None:
        """A gradient that is mostly exact zeros where its terms land: a backward that returns zeros
        there (a real oneDNN defect) would pass as right. Its elements no term reaches must be 0 anyway."""
        for name, expected in self.first_reference.items():
            if bool(expected.all()):  # no zero at all (the usual case): the term counts are not needed
                continue
            reached = self.first_counts[name] > 0
            if 2 * int(((expected == 0) & reached).sum()) > int(reached.sum()):
                return f"grad_{name} mostly exact zeros where terms land"
        return None
