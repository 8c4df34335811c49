"""What a finding says about its defect, found by replaying its problem when it is recorded:

- the same check on the same problem passes: the result changes between identical calls
  (``nondeterministic``);
- the same check passes on the problem laid out contiguously: the kernel misreads memory (``layout``);
- the exact check fails on the problem's geometry with small integers, where every sum is exact: the
  arithmetic sums the wrong terms (``integer``), whichever check met it (a wrong value met on NaN and Inf
  inputs, or by the adjoint identity, is the same defect);
- the exact check passes: only the rounding is off (``rounding``: undeclared TF32, half-precision sums).

A kernel declared as a transform (FFT, Winograd) is held to an allowance even on integers, so its exact
check cannot tell the two apart: its wrong values are one defect (``transform``). One defect met by many
checks then reads as one cause in the report (``reports.causes``)."""

from __future__ import annotations

from convt_conformance.reports import causes

from .case import Case
from .catalog import macs
from .checks import CHECKS, run_on
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
    if CHECKS["exact"].skip_reason(case) is not None or macs(problem) > EXACT_REPLAY_WORK:
        return None  # the exact check forms every product at once: not on a model-size problem
    if case.precision.transform:
        return TRANSFORM if kind != "special-values" else None
    contiguous = _fails(case, problem.replace(layout="contiguous"), "exact")
    if contiguous:
        return INTEGER
    if laid_out and _fails(case, problem, "exact"):
        return LAYOUT
    if kind == "exact":  # it failed on integers itself
        return INTEGER
    return ROUNDING if contiguous is not None and kind != "special-values" else None


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
