"""The glue between an oracle and a test: the case under test, calling it, and concluding a check
(pass, known discrepancy, or failure), while keeping the counts a run summary needs."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from hypothesis import event, note

from impls import Implementation, spec
from impls.naive import explain, reference
from reports import expectations

from . import oracles
from .problem import Problem, Tensors, magnitude, term_count
from .strategies import regions_of


class Discrepancy(AssertionError):
    """An implementation departs from the contract; the message says where and how."""


@dataclass(frozen=True)
class Case:
    """One implementation on one device in one dtype: what a parametrized test checks."""

    impl: Implementation
    device: str
    dtype_name: str

    @property
    def dtype(self) -> torch.dtype:
        return spec.DTYPES[self.dtype_name]

    @property
    def id(self) -> str:
        return f"{self.impl.name}-{self.device}-{self.dtype_name}"

    def __repr__(self) -> str:
        return f"Case({self.id!r})"

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # Hypothesis' failure printout
        printer.text(repr(self))

    @property
    def precision(self) -> oracles.Precision:
        declared = self.impl.accumulation.get(self.dtype_name)
        return oracles.precision_of(self.dtype, tf32=self.impl.tf32 and self.device == "cuda",
                                    accumulation=spec.DTYPES[declared] if declared else None)


# Every test also checks that a valid problem is accepted; the bound test also runs the statistical tier.
IMPLIED_CHECKS = {"valid-refused", "statistical"}


class Tally:
    """Counts per (implementation, check): examples concluded, failed, known; regions hit; rules
    matched. One per process; pytest-xdist workers send theirs to the controller."""

    def __init__(self) -> None:
        self.examples: Counter[tuple[str, str]] = Counter()
        self.failed: Counter[tuple[str, str]] = Counter()
        self.known: Counter[tuple[str, str]] = Counter()
        self.regions: Counter[str] = Counter()
        self.rules_matched: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        pairs = lambda counter: [[*key, n] for key, n in counter.items()]  # noqa: E731
        return {"examples": pairs(self.examples), "failed": pairs(self.failed), "known": pairs(self.known),
                "regions": dict(self.regions), "rules_matched": dict(self.rules_matched)}

    def checks_run(self) -> set[str]:
        return {check for _, check in self.examples} | IMPLIED_CHECKS

    def merge(self, data: dict[str, Any]) -> None:
        for name in ("examples", "failed", "known"):
            for impl, check, n in data.get(name, []):
                getattr(self, name)[(impl, check)] += n
        self.regions.update(data.get("regions", {}))
        self.rules_matched.update(data.get("rules_matched", {}))


TALLY = Tally()
RULES: list[expectations.Rule] = []


def set_rules(rules: list[expectations.Rule]) -> None:
    RULES[:] = rules


def label(problem: Problem) -> None:
    """Label a valid problem's classes for Hypothesis' statistics and the run's region counts."""
    event(f"dims={problem.dims}")
    event(f"layout={problem.layout}")
    for region in regions_of(problem):
        event(f"region: {region}")
        TALLY.regions[region] += 1


def facts_of(problem: Problem, tensors: Tensors | None = None) -> dict[str, Any]:
    """What expectation rules may key on: the problem's fields plus derived facets."""
    facts = problem.to_dict()
    facts["regions"] = regions_of(problem) if problem.broken_rule is None else []
    if tensors is not None:
        facts["nonfinite_in"] = [name for name, t in zip(("input", "weight", "bias"), tensors)
                                 if t is not None and not torch.isfinite(t).all()]
    return facts


def call(case: Case, problem: Problem, tensors: Tensors) -> torch.Tensor:
    """Run the implementation on a valid problem; refusing it is a discrepancy of its own."""
    __tracebackhide__ = True
    try:
        return case.impl.fn(*tensors, **problem.kwargs())
    except Exception as exc:  # noqa: BLE001  (any refusal of a valid problem is the finding)
        conclude(case, problem, "valid-refused", oracles.Finding(
            "valid-refused", f"refused a valid problem: {type(exc).__name__}: {_first_line(exc)}"), tensors)
        raise AssertionError("unreachable: conclude raises for unexpected findings") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def conclude(case: Case, problem: Problem, check: str, finding: oracles.Finding | None,
             tensors: Tensors | None = None) -> None:
    """Count the example; a finding either matches a known-discrepancy rule (reported as expected,
    not failed, not shrunk) or fails the example with a message a person can act on."""
    __tracebackhide__ = True
    TALLY.examples[(case.impl.name, check)] += 1
    if finding is None:
        return
    key = (case.impl.name, finding.check)
    rule = expectations.match(RULES, case.impl.name, finding.check, case.device, case.dtype_name,
                              facts_of(problem, tensors))
    if rule is not None:
        TALLY.known[key] += 1
        TALLY.rules_matched[rule.id] += 1
        event(f"known discrepancy: {rule.id}")
        return
    TALLY.failed[key] += 1
    note(f"problem: {problem.describe()}")
    note(f"problem json: {problem.to_json()}")
    raise Discrepancy(f"{case.id}: {finding.render()}\n  problem: {problem.describe()}")


@dataclass
class Evaluation:
    """A valid problem prepared for value checks: tensors and the float64 quantities behind the
    allowances, computed on demand."""

    case: Case
    problem: Problem

    @cached_property
    def values(self) -> Tensors:
        return self.problem.tensors()

    @cached_property
    def given(self) -> Tensors:
        return self.problem.materialize(self.case.device)

    @cached_property
    def geometry(self) -> spec.Geometry:
        return self.problem.geometry()

    @cached_property
    def y_ref(self) -> torch.Tensor:
        return reference(*self.values, **self.problem.kwargs())

    @cached_property
    def y_ref_without_bias(self) -> torch.Tensor | None:
        """The reference before the bias is added (None without a bias)."""
        x, w, b = self.values
        return None if b is None else reference(x, w, None, **self.problem.kwargs())

    def allowance(self) -> torch.Tensor:
        return oracles.allowance(self.M, self.K, self.y_ref, self.case.precision, self.y_ref_without_bias)

    @cached_property
    def M(self) -> torch.Tensor:
        return magnitude(self.values, self.problem)

    @cached_property
    def K(self) -> torch.Tensor:
        return term_count(self.values, self.problem)

    def untrusted_reason(self) -> str | None:
        g = self.geometry
        taps_landing = all(
            spec.tap_lands_in_output(t, L, s, p, d, o)
            for L, k, s, p, d, o in zip(g.input_size, g.kernel_size, g.stride, g.padding, g.dilation,
                                        g.output_size)
            for t in range(k))
        return oracles.untrusted_reason(self.y_ref, self.values.input, self.values.weight, taps_landing)

    def explanation(self, index: list[int], limit: int = 12) -> str:
        """The definition's terms for one output element, as text (at most ``limit`` lines)."""
        text = explain(*self.values, index, **self.problem.kwargs()).table().splitlines()
        shown = list(itertools.islice(text, limit + 1))
        if len(text) > limit + 1:
            shown.append(f"  ... {len(text) - limit - 1} more")
        return "\n".join(shown)
