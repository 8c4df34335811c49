"""Each check as a plain function ``(evaluation) -> Finding | None``, and :func:`run_on`, the one way
to run a check on a problem.

The Hypothesis tests draw problems and call :func:`run_on` through :func:`run_check`; corpus replays,
``python -m suites repro`` and the benchmarks call it on stored problems. Value checks re-seed vacuous
values (oracle 7) and raise :class:`Untrusted` only when no seed helps; a valid problem the
implementation refuses is a finding (oracle 5).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from hypothesis import event, reject, target
from hypothesis import strategies as st

from . import campaign, oracles
from .containment import ContainmentError
from .harness import Case, Evaluation, conclude, label, record_unminimized
from .problem import Problem, Tensors, magnitude
from .strategies import invalid_problems, problems


class Untrusted(Exception):
    """No values for this problem make the check meaningful; redraw it (or skip a stored one)."""


class CallFailed(Exception):
    """The implementation raised on a valid problem, crashed or hung; ``finding`` says how."""

    def __init__(self, finding: oracles.Finding) -> None:
        super().__init__(finding.summary)
        self.finding = finding


Check = Callable[[Evaluation], "oracles.Finding | None"]


def call(evaluation: Evaluation, tensors: Tensors | None = None) -> torch.Tensor:
    """Run the implementation on a valid problem; refusing it is a discrepancy of its own."""
    case, problem = evaluation.case, evaluation.problem
    try:
        return case.impl.fn(*(evaluation.given if tensors is None else tensors), **problem.kwargs())
    except ContainmentError as exc:
        raise CallFailed(oracles.Finding(exc.check, str(exc))) from None
    except Exception as exc:  # noqa: BLE001  (any refusal of a valid problem is the finding)
        text = str(exc).strip().splitlines()
        raise CallFailed(oracles.Finding("valid-refused", f"refused a valid problem: {type(exc).__name__}: "
                                      f"{text[0][:300] if text else ''}")) from None


# Vacuous values (a dead channel, outputs that cancel to zero) are replaced by the values of other
# seeds, in a fixed order, so a stored problem replays the same way; the geometry is never changed.
RESEED_ATTEMPTS = 16


def reseeded(seed: int, attempt: int) -> int:
    return seed if attempt == 0 else (seed * 1_000_003 + attempt) % 2**31


def trusted(case: Case, problem: Problem) -> Evaluation:
    """An evaluation of ``problem`` whose values make a value check meaningful (oracle 7)."""
    reason = None
    for attempt in range(RESEED_ATTEMPTS):
        evaluation = Evaluation(case, problem.replace(seed=reseeded(problem.seed, attempt)))
        reason = evaluation.vacuous_reason()
        if reason is None:
            return evaluation
    raise Untrusted(reason)


def _shape_of(y: torch.Tensor, evaluation: Evaluation) -> oracles.Finding | None:
    return oracles.check_shape(y, evaluation.geometry.output_shape, evaluation.case.dtype, evaluation.case.device)


def _explained(finding: oracles.Finding | None, evaluation: Evaluation, key: str) -> oracles.Finding | None:
    if finding is not None and key in finding.details:
        finding.details["explanation"] = evaluation.explanation(finding.details[key])
    return finding


def shape(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 1: shape from the formula, the input's dtype and device (batch 0 included)."""
    return _shape_of(call(evaluation), evaluation)


def exact(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 2: small-integer values; the float64 reference rounded to the dtype, exactly (for
    transform algorithms: within their allowance of it)."""
    y = call(evaluation)
    finding = _shape_of(y, evaluation) or oracles.check_exact(y, evaluation.y_ref, evaluation.case.dtype,
                                                              evaluation.error_model)
    finding = _explained(finding, evaluation, "first wrong element")
    return _explained(finding, evaluation, "index")


def bound(evaluation: Evaluation, stats: dict | None = None) -> oracles.Finding | None:
    """Oracle 3: random reals within the allowance and, for direct kernels, the statistical limit."""
    y = call(evaluation)
    finding = _shape_of(y, evaluation)
    if finding is None:
        finding, measured = oracles.check_bound(y, evaluation.y_ref, evaluation.error_model,
                                                evaluation.case.precision, evaluation.y_ref_without_bias)
        if stats is not None:
            stats.update(measured)
    return _explained(finding, evaluation, "index")


_CONVOLUTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def forward_convolution(y: torch.Tensor, weight: torch.Tensor, problem: Problem,
                        input_size: tuple[int, ...]) -> torch.Tensor:
    """conv(y) with the same stride/padding/dilation/groups, in y's dtype, truncated to the input's
    size: when output_padding >= stride the convolution has positions beyond x, which never meet x
    in the inner product."""
    batched = y if problem.batched else y.unsqueeze(0)
    result = _CONVOLUTIONS[problem.dims](batched, weight, None, problem.stride, problem.padding,
                                         problem.dilation, problem.groups)
    result = result[(slice(None), slice(None)) + tuple(slice(0, L) for L in input_size)]
    return result if problem.batched else result[0]


def adjoint(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 4: ``<conv(y), x> = <y, convT(x)>`` (drawn without bias: the identity is for the linear map)."""
    problem = evaluation.problem
    x, w, _ = evaluation.values
    wide = torch.complex128 if x.is_complex() else torch.float64
    generator = torch.Generator().manual_seed(problem.seed ^ 0x5EED)
    y_probe = torch.randn(evaluation.geometry.output_shape, dtype=torch.float64, generator=generator).to(wide)
    conv_y = forward_convolution(y_probe, w.to(wide), problem, evaluation.geometry.input_size)
    convt_x = call(evaluation)
    finding = _shape_of(convt_x, evaluation)
    if finding is None:
        conv_terms = problem.weight_shape[1] * math.prod(problem.weight_shape[2:])
        finding = oracles.check_adjoint(conv_y, x, y_probe, convt_x, evaluation.error_model, conv_terms)
    return finding


def invalid_accepted(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 5a: a problem that breaks a validity rule must raise (any exception)."""
    problem = evaluation.problem
    try:
        y = evaluation.case.impl.fn(*evaluation.given, **problem.kwargs())
    except ContainmentError as exc:  # a crash or a hang on invalid input is no refusal
        return oracles.Finding(exc.check, str(exc))
    except Exception:  # noqa: BLE001  (any exception is a refusal)
        return None
    return oracles.Finding("invalid-accepted", f"accepted a problem that breaks {problem.broken_rule!r} and "
                           f"returned shape {tuple(y.shape)} {y.dtype}")


def valid_refused(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 5b: every valid problem is accepted."""
    call(evaluation)
    return None


def inputs_unmodified(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 6: the call leaves its input, weight and bias bits (and strides) as they were."""
    tensors = evaluation.given
    before = [None if t is None else (oracles.bits(t).clone(), t.stride()) for t in tensors]
    call(evaluation, tensors)
    changed = [name for name, t, saved in zip(("input", "weight", "bias"), tensors, before)
               if t is not None and not (torch.equal(oracles.bits(t), saved[0]) and t.stride() == saved[1])]
    return oracles.Finding("inputs-unmodified", f"the call modified its {', '.join(changed)}") if changed else None


def layout(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 6: the same values in another memory layout agree with the contiguous result within
    both allowances (each lies within one allowance of the reference)."""
    problem = evaluation.problem
    y_laid = call(evaluation)
    y_plain = call(evaluation, problem.materialize(evaluation.case.device, layout="contiguous"))
    finding = _shape_of(y_laid, evaluation)
    if finding is None:
        finding = evaluation.error_model.exceedance("layout", y_laid, oracles.widen(y_plain), scale=2.0)
        if finding is not None:
            finding.summary = f"{problem.layout} and contiguous results differ: {finding.summary}"
    return _explained(finding, evaluation, "index")


def special_values(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 6: NaN and +-Inf reach exactly the outputs the definition says."""
    problem = evaluation.problem
    y = call(evaluation)
    finding = _shape_of(y, evaluation)
    if finding is None:
        values = evaluation.values
        finite = Tensors(*(None if t is None else torch.where(torch.isfinite(t), t, torch.zeros((), dtype=t.dtype))
                           for t in values))
        spread = non_finite_planes(evaluation) if evaluation.case.precision.transform else None
        finding = oracles.check_special_values(y, evaluation.y_ref, magnitude(finite, problem), evaluation.case.dtype,
                                               spread)
    return _explained(finding, evaluation, "first wrong element")


def non_finite_planes(evaluation: Evaluation) -> torch.Tensor:
    """The output elements whose plane ``(n, c_out)`` a non-finite value feeds through a transform: any
    of the group's input channels of sample ``n``, any of ``c_out``'s kernels, or its bias."""
    x, w, b = evaluation.values
    problem = evaluation.problem
    x = x if problem.batched else x.unsqueeze(0)
    n, groups, cout_g = x.shape[0], problem.groups, w.shape[1]
    cin_g = w.shape[0] // groups
    bad_x = (~torch.isfinite(x)).flatten(2).any(-1).reshape(n, groups, cin_g).any(-1)  # (n, groups)
    bad_w = (~torch.isfinite(w)).flatten(2).any(-1).reshape(groups, cin_g, cout_g).any(1).reshape(1, -1)  # (1, Cout)
    planes = bad_x.repeat_interleave(cout_g, dim=1) | bad_w
    if b is not None:
        planes = planes | ~torch.isfinite(b).reshape(1, -1)
    planes = planes if problem.batched else planes[0]
    return planes.reshape(planes.shape + (1,) * problem.dims).expand(evaluation.geometry.output_shape)


def determinism(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 6: two identical calls give identical bits (for implementations that declare it)."""
    problem, device = evaluation.problem, evaluation.case.device
    first = oracles.bits(call(evaluation, problem.materialize(device)))
    second = oracles.bits(call(evaluation, problem.materialize(device)))
    if first.shape == second.shape and torch.equal(first, second):
        return None
    differing = math.nan if first.shape != second.shape else int((first != second).sum())
    return oracles.Finding("determinism", f"two identical calls differ in {differing} element(s)")


CHECKS: dict[str, Check] = {
    "shape": shape, "empty-batch": shape, "exact": exact, "bound": bound, "adjoint": adjoint,
    "invalid-accepted": invalid_accepted, "valid-refused": valid_refused,
    "inputs-unmodified": inputs_unmodified, "layout": layout, "special-values": special_values,
    "determinism": determinism,
}
# Checks that compare values, so vacuous values are re-seeded first.
VALUE_CHECKS = ("exact", "bound", "adjoint", "layout")


def _as_checked(problem: Problem, check: str) -> Problem:
    """The problem a check runs: the adjoint identity is for the linear map, without the bias."""
    return problem.replace(bias=False) if check == "adjoint" else problem


def never_runs(problem: Problem, check: str) -> str | None:
    """Why a stored problem could never run ``check`` (no seed gives meaningful values), or None."""
    if check not in VALUE_CHECKS:
        return None
    try:
        trusted(None, _as_checked(problem, check))  # the values alone decide: no case needed
    except Untrusted as untrusted:
        return str(untrusted)
    return None


def run_on(case: Case, problem: Problem, check: str,
           stats: dict | None = None) -> tuple[Problem, oracles.Finding | None]:
    """Run one check on one problem: the problem as run (values re-seeded where they were vacuous)
    and the finding, a refusal or crash included. Raises :class:`Untrusted` when no values make a
    value check meaningful. The tests, corpus replay, ``repro`` and the benchmarks all call this."""
    problem = _as_checked(problem, check)
    evaluation = trusted(case, problem) if check in VALUE_CHECKS else Evaluation(case, problem)
    try:
        finding = bound(evaluation, stats) if check == "bound" else CHECKS[check](evaluation)
    except CallFailed as failed:
        finding = failed.finding
    return evaluation.problem, finding


def run_check(case: Case, problem: Problem, check: str) -> None:
    """Run one check inside a Hypothesis test: label the problem, redraw untrusted ones, steer the
    search towards large errors, and conclude."""
    __tracebackhide__ = True
    campaign.stop_if_spent(record_unminimized)
    stats: dict[str, float] = {}
    try:
        problem, finding = run_on(case, problem, check, stats)
    except Untrusted as untrusted:
        event(f"redrawn: {untrusted}")
        reject()
    if problem.broken_rule is None:
        label(problem, check)
    else:
        event(f"rule: {problem.broken_rule}")
    if stats:
        target(min(stats["max"], 1e6), label="max error / allowance")
        target(min(stats["rms"], 1e6), label="RMS normalized error")
    conclude(case, problem, check, finding)


# How each check's problems are drawn (the tests and benchmarks/kill_rates.py share this).
OTHER_LAYOUTS = ("channels_last", "noncontig_input", "noncontig_weight", "expanded_weight")
_DRAWS: dict[str, dict] = {
    "shape": {}, "empty-batch": {"batch": 0}, "exact": {"values": "int", "min_batch": 1},
    "bound": {"values": "real", "min_batch": 1}, "adjoint": {"values": "real", "min_batch": 1},
    "valid-refused": {}, "inputs-unmodified": {}, "determinism": {},
    "layout": {"values": "real", "min_batch": 1, "layouts": OTHER_LAYOUTS},
    "special-values": {"values": "special"},
}


def problems_for(check: str, case: Case) -> st.SearchStrategy[Problem]:
    """The problems a check is run on, for one case."""
    if check == "invalid-accepted":
        return invalid_problems(dims=case.impl.dims, dtype=case.dtype_name)
    return problems(dims=case.impl.dims, dtype=case.dtype_name, **_DRAWS[check])
