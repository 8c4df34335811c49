"""The gradient checks, for implementations that declare ``grad`` (and ``double_backward``).

The gate differentiates the implementation's output with a gradient ``g`` drawn like the values, and
compares ``grad_input`` (the forward convolution of ``g``: the adjoint), ``grad_weight`` and
``grad_bias`` with the float64 definition differentiated (``suites/gradients.py``): exactly on small
integers, within the error model's per-element allowance on random reals. ``g`` comes in the
problem's memory layout (channels last, strided, or stride 0 as a broadcast loss gives it), and the
backward must leave its inputs and ``g`` untouched.
"""

from __future__ import annotations

import torch

from . import gradients, oracles
from .case import Case
from .checks import CallFailed, check, declared_deterministic, error_details, raised, valid
from .containment import ContainedCall, ContainmentError
from .evaluation import GradientEvaluation


def _differentiable(case: Case) -> str | None:
    if not case.impl.differentiable(case.device):
        return f"{case.impl.name} does not declare grad on {case.device}"
    if case.precision.transform:  # the allowances below are per element: a transform has none
        return f"{case.impl.name} declares a transform algorithm for {case.dtype_name}: no per-element " \
               f"gradient allowance applies"
    return None


def _twice_differentiable(case: Case) -> str | None:
    if not case.impl.twice_differentiable(case.device):
        return f"{case.impl.name} does not declare double_backward on {case.device}"
    return _differentiable(case)


def _deterministic_and_differentiable(case: Case) -> str | None:
    return _differentiable(case) or declared_deterministic(case)


def differentiate(evaluation: GradientEvaluation, procedure: str = "first") -> dict[str, torch.Tensor]:
    """Run the implementation's forward and backward (``gradients.PROCEDURES``), in its worker
    process when it is contained; a refusal, a missing graph or a crash becomes the finding."""
    fn = evaluation.case.impl.fn
    args = (evaluation.given, evaluation.problem.kwargs(), evaluation.given_grad_output)
    if procedure == "second":
        args += (tuple(p.to(evaluation.case.device) for p in evaluation.probes),)
    try:
        if isinstance(fn, ContainedCall):
            return fn.run(procedure, *args)
        return gradients.PROCEDURES[procedure](fn, *args, flags=evaluation.case.impl.extra.get("flags"))
    except ContainmentError as exc:
        raise CallFailed(exc.as_finding()) from None
    except Exception as exc:  # noqa: BLE001  (any refusal of a valid problem's backward is the finding)
        raise CallFailed(oracles.Finding("backward-refused", f"differentiating a valid problem raised {raised(exc)}",
                                         error_details(exc))) from None


def compare(evaluation: GradientEvaluation, got: dict[str, torch.Tensor], check: str, exact: bool,
            second: bool = False) -> oracles.Finding | None:
    """Each gradient against the definition's: its shape and dtype, then exactly (``exact``) or within
    its allowance. The finding shows the first wrong gradient and names every wrong one (its facets
    join theirs, so a known bug of one gradient never excuses another's)."""
    expected = evaluation.second_reference if second else evaluation.first_reference
    findings = {}
    for name, reference in expected.items():
        finding = _compare_one(evaluation, got.get(name), reference, check, exact, second, name)
        if finding is not None:
            findings[name] = finding
    if not findings:
        return None
    first = next(iter(findings.values()))
    if len(findings) > 1:
        first.summary += f" (also wrong: {', '.join(_label(name, second) for name in list(findings)[1:])})"
    first.facets = joined_facets(findings)
    return first


def _label(name: str, second: bool) -> str:
    return f"d/d{name}" if second else f"grad_{name}"


def joined_facets(findings: dict[str, oracles.Finding]) -> dict:
    """The facets of several gradients' findings as one: which gradients, every class of wrong and
    expected value, the largest ratio (absent when some finding has none: no cap can then hold)."""
    facets: dict = {"gradients": list(findings)}
    for key in ("got", "expected"):
        facets[key] = sorted({c for f in findings.values() for c in f.facets.get(key, ["?"])})
    ratios = [f.facets.get("ratio") for f in findings.values()]
    if all(r is not None for r in ratios):
        facets["ratio"] = max(ratios)
    return facets


def _compare_one(evaluation: GradientEvaluation, value: torch.Tensor | None, reference: torch.Tensor, check: str,
                 exact: bool, second: bool, name: str) -> oracles.Finding | None:
    label = _label(name, second)
    if value is None:
        return oracles.Finding(check, f"no {label}: the backward returned None", facets={"got": ["missing"]})
    if tuple(value.shape) != tuple(reference.shape) or value.dtype != evaluation.case.dtype:
        return oracles.Finding(check, f"{label} has shape {tuple(value.shape)} {value.dtype}, expected "
                               f"{tuple(reference.shape)} {evaluation.case.dtype}", facets={"got": ["wrong shape"]})
    if exact:
        finding = oracles.check_exact(value, reference, evaluation.case.dtype)
        finding = finding and oracles.Finding(check, finding.summary, finding.details, finding.picture, finding.facets)
    else:
        finding = evaluation.gradient_model(name, second).exceedance(check, value, reference)
    if finding is not None:
        finding.summary = f"{label}: {finding.summary}"
        finding.details = {"gradient": label, **finding.details}
    return finding


GRADIENT_FINDINGS = ("backward-refused",)


@check("grad-exact", "test_grad_exact", valid(value_kind="int", min_batch=1), replays="int", compares_values=True,
       evaluation=GradientEvaluation, applies=_differentiable, also_finds=GRADIENT_FINDINGS)
def grad_exact(evaluation: GradientEvaluation) -> oracles.Finding | None:
    """grad_input, grad_weight and grad_bias on small integers equal the float64 definition's,
    rounded to the dtype, exactly (every partial sum is representable)."""
    return compare(evaluation, differentiate(evaluation), "grad-exact", exact=True)


@check("grad-bound", "test_grad_bound", valid(value_kind="real", min_batch=1), replays="real", compares_values=True,
       evaluation=GradientEvaluation, applies=_differentiable,
       also_finds=GRADIENT_FINDINGS + ("grad-inputs-modified",))
def grad_bound(evaluation: GradientEvaluation) -> oracles.Finding | None:
    """On random reals, in every memory layout of the input, weight and ``g``: each gradient within its
    per-element allowance, and the backward leaves the input, weight, bias and ``g`` untouched."""
    tensors = {**dict(zip(("input", "weight", "bias"), evaluation.given)), "grad_output": evaluation.given_grad_output}
    before = {name: (oracles.bits(t).clone(), t.stride()) for name, t in tensors.items() if t is not None}
    got = differentiate(evaluation)
    changed = [name for name, (saved, stride) in before.items()
               if not (torch.equal(oracles.bits(tensors[name]), saved) and tensors[name].stride() == stride)]
    if changed:
        return oracles.Finding("grad-inputs-modified", f"differentiating modified the {', '.join(changed)}")
    return compare(evaluation, got, "grad-bound", exact=False)


@check("double-backward", "test_double_backward", valid(value_kind="real", min_batch=1), replays="real",
       compares_values=True, without_bias=True, evaluation=GradientEvaluation, applies=_twice_differentiable,
       also_finds=GRADIENT_FINDINGS)
def double_backward(evaluation: GradientEvaluation) -> oracles.Finding | None:
    """The backward differentiated once more: the derivatives of ``<grad_input, v> + <grad_weight, u>``
    with respect to the input, the weight and ``g`` within their allowances."""
    return compare(evaluation, differentiate(evaluation, "second"), "double-backward", exact=False, second=True)


@check("grad-determinism", "test_grad_determinism", valid(value_kind="real", min_batch=1), replays="real",
       evaluation=GradientEvaluation, applies=_deterministic_and_differentiable, also_finds=GRADIENT_FINDINGS)
def grad_determinism(evaluation: GradientEvaluation) -> oracles.Finding | None:
    """Two identical backward passes give identical bits (for implementations declared deterministic)."""
    first, second = differentiate(evaluation), differentiate(evaluation)
    differing = {}
    for name, value in first.items():
        again = second.get(name)
        if value is None or again is None:
            continue  # a missing gradient is the value checks' finding
        a, b = oracles.bits(value), oracles.bits(again)
        if a.shape != b.shape or not torch.equal(a, b):
            differing[name] = "?" if a.shape != b.shape else int((a != b).sum())
    if not differing:
        return None
    return oracles.Finding("grad-determinism", "two identical backward passes differ in " + ", ".join(
        f"{count} element(s) of grad_{name}" for name, count in differing.items()),
        facets={"gradients": list(differing)})
