"""What a finding says about its defect, found by replaying its problem when it is recorded:

- the same check on the same problem passes: the result changes between identical calls
  (``nondeterministic``);
- the same check passes on the problem laid out contiguously: the kernel misreads memory (``layout``);
- the exact check fails on the problem's geometry with small integers, where every sum is exact (on a
  model-size problem: the model-size check on such integers): the arithmetic sums the wrong terms
  (``integer``), whichever check met it (a wrong value met on NaN and Inf inputs, or by the adjoint
  identity, is the same defect);
- the exact check passes: only the rounding is off (``rounding``: undeclared TF32, half-precision sums).

A kernel declared as a transform (FFT, Winograd) is held to an allowance even on integers, so its exact
check cannot tell the two apart: its wrong values are one defect (``transform``). One defect met by many
checks then reads as one cause in the report (``reports.causes``)."""

from __future__ import annotations

from convt_conformance.reports import causes

from .case import Case
from .catalog import macs
from .checks import CHECKS, run_on
from .model_size_checks import MODEL_SIZE
from .problem import Problem
from .sizes import footprint, memory_cap

# The kinds of finding that say "wrong values" (the reports' own list) and the special-values check's, whose
# wrong values may be the same defect met on NaN and Inf inputs.
VALUE_FINDINGS = (*causes.VALUE_FINDINGS, "special-values")
INTEGER, LAYOUT, ROUNDING, NONDETERMINISTIC, TRANSFORM = "integer", "layout", "rounding", "nondeterministic", \
    "transform"
EXACT_REPLAY_WORK = 2**24  # multiply-adds: the exact check's float64 reference holds every product at once


def value_evidence(case: Case, problem: Problem, kind: str, ran: str) -> str | None:
    """One of the kinds of evidence above for a value finding of ``kind`` met by the check ``ran`` on
    ``problem``; None where the replays cannot tell (the check does not apply, no integers fit the dtype,
    a replay met something else) or the special values themselves are what is wrong."""
    if kind not in VALUE_FINDINGS or problem.broken_rule or ran not in CHECKS:
        return None
    if 2 * footprint(problem, gradients=False) > memory_cap(case.device):
        return None  # a replay would hold a second copy of a problem this large
    if case.impl.is_deterministic(case.device) and _fails(case, problem, ran) is False:
        return NONDETERMINISTIC
    laid_out = problem.layout != "contiguous"
    if kind == "layout" or (laid_out and _fails(case, problem.replace(layout="contiguous"), ran) is False):
        return LAYOUT  # the layout check compares layouts: its defect is the layout's whatever the replay
    if CHECKS["exact"].skip_reason(case) is not None:
        return None
    if case.precision.transform:
        return TRANSFORM if kind != "special-values" else None
    contiguous = _fails_on_integers(case, problem.replace(layout="contiguous"))
    if contiguous:
        return INTEGER
    if laid_out and _fails_on_integers(case, problem):
        return LAYOUT
    if kind == "exact":  # it failed on integers itself
        return INTEGER
    return ROUNDING if contiguous is not None and kind != "special-values" else None


def _fails_on_integers(case: Case, problem: Problem) -> bool | None:
    """Whether the problem's geometry fails on small integers: the exact check, or, where it cannot say (a
    model-size problem, whose every product it would form at once; many channels, one of which its integers
    always leave dead), the model-size check on integers whose sums are all exact (None where only thinning
    them, which needs every magnitude, would make them so)."""
    exact = _fails(case, problem, "exact") if macs(problem) <= EXACT_REPLAY_WORK else None
    integers = problem.replace(value_kind="int")
    if exact is not None or not integers.integers_always_exact():
        return exact
    return _fails(case, integers, MODEL_SIZE)


def _fails(case: Case, problem: Problem, name: str) -> bool | None:
    """Whether the check ``name`` finds its own kind of fault on ``problem`` as it replays it; None where
    it could not say (no trustworthy values, or the call failed in another way: a refusal, a crash)."""
    check = CHECKS[name]
    try:
        _, finding = run_on(case, check.problem(problem, case.dtype_name), name)
    except Exception:  # noqa: BLE001  (Untrusted, or anything: evidence must never cost the record it explains)
        return None
    if finding is None:
        return False
    return True if finding.check in check.kinds else None
