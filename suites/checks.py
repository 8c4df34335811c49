"""Each check as a plain function ``(case, problem) -> Finding | None``.

The Hypothesis tests draw problems and call these; corpus replays and ``python -m suites repro`` call
them on stored problems. A check raises :class:`Untrusted` when the problem would prove nothing
(oracle 7) and :class:`CallFailed` when the implementation rejects a valid problem (oracle 5).
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
    """The problem would pass vacuously; redraw it (or skip a stored one)."""


class CallFailed(Exception):
    """The implementation raised on a valid problem, crashed or hung; ``finding`` says how."""

    def __init__(self, finding: oracles.Finding) -> None:
        super().__init__(finding.summary)
        self.finding = finding


Check = Callable[[Case, Problem], "oracles.Finding | None"]


def call(case: Case, problem: Problem, tensors: Tensors) -> torch.Tensor:
    """Run the implementation on a valid problem; refusing it is a discrepancy of its own."""
    try:
        return case.impl.fn(*tensors, **problem.kwargs())
    except ContainmentError as exc:
        raise CallFailed(oracles.Finding(exc.check, str(exc))) from None
    except Exception as exc:  # noqa: BLE001  (any refusal of a valid problem is the finding)
        text = str(exc).strip().splitlines()
        raise CallFailed(oracles.Finding("valid-refused", f"refused a valid problem: {type(exc).__name__}: "
                                      f"{text[0][:300] if text else ''}")) from None


def _trusted(evaluation: Evaluation) -> Evaluation:
    reason = evaluation.untrusted_reason()
    if reason is not None:
        raise Untrusted(reason)
    return evaluation


def _shape_of(y: torch.Tensor, evaluation: Evaluation) -> oracles.Finding | None:
    return oracles.check_shape(y, evaluation.geometry.output_shape, evaluation.case.dtype, evaluation.case.device)


def _explained(finding: oracles.Finding | None, evaluation: Evaluation, key: str) -> oracles.Finding | None:
    if finding is not None and key in finding.details:
        finding.details["explanation"] = evaluation.explanation(finding.details[key])
    return finding


def shape(case: Case, problem: Problem) -> oracles.Finding | None:
    """Oracle 1: shape from the formula, the input's dtype and device (batch 0 included)."""
    evaluation = Evaluation(case, problem)
    return _shape_of(call(case, problem, evaluation.given), evaluation)


def exact(case: Case, problem: Problem) -> oracles.Finding | None:
    """Oracle 2: small-integer values; the float64 reference rounded to the dtype, exactly."""
    evaluation = _trusted(Evaluation(case, problem))
    y = call(case, problem, evaluation.given)
    finding = _shape_of(y, evaluation) or oracles.check_exact(y, evaluation.y_ref, case.dtype)
    return _explained(finding, evaluation, "first wrong element")


def bound(case: Case, problem: Problem, stats: dict | None = None) -> oracles.Finding | None:
    """Oracle 3: random reals within the per-element allowance and the statistical limit."""
    evaluation = _trusted(Evaluation(case, problem))
    y = call(case, problem, evaluation.given)
    finding = _shape_of(y, evaluation)
    if finding is None:
        finding, measured = oracles.check_bound(y, evaluation.y_ref, evaluation.M, evaluation.K, case.precision,
                                                case.dtype, evaluation.y_ref_without_bias)
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


def adjoint(case: Case, problem: Problem) -> oracles.Finding | None:
    """Oracle 4: ``<conv(y), x> = <y, convT(x)>`` (without bias: the identity is for the linear map)."""
    problem = problem.replace(bias=False)
    evaluation = _trusted(Evaluation(case, problem))
    x, w, _ = evaluation.values
    wide = torch.complex128 if x.is_complex() else torch.float64
    generator = torch.Generator().manual_seed(problem.seed ^ 0x5EED)
    y_probe = torch.randn(evaluation.geometry.output_shape, dtype=torch.float64, generator=generator).to(wide)
    conv_y = forward_convolution(y_probe, w.to(wide), problem, evaluation.geometry.input_size)
    convt_x = call(case, problem, evaluation.given)
    finding = _shape_of(convt_x, evaluation)
    if finding is None:
        conv_terms = problem.weight_shape[1] * math.prod(problem.weight_shape[2:])
        finding = oracles.check_adjoint(conv_y, x, y_probe, convt_x, evaluation.M, evaluation.K, conv_terms,
                                        case.precision)
    return finding


def invalid_accepted(case: Case, problem: Problem) -> oracles.Finding | None:
    """Oracle 5a: a problem that breaks a validity rule must raise (any exception)."""
    tensors = problem.materialize(case.device)
    try:
        y = case.impl.fn(*tensors, **problem.kwargs())
    except ContainmentError as exc:  # a crash or a hang on invalid input is no refusal
        return oracles.Finding(exc.check, str(exc))
    except Exception:  # noqa: BLE001  (any exception is a refusal)
        return None
    return oracles.Finding("invalid-accepted", f"accepted a problem that breaks {problem.broken_rule!r} and "
                           f"returned shape {tuple(y.shape)} {y.dtype}")


def valid_refused(case: Case, problem: Problem) -> oracles.Finding | None:
    """Oracle 5b: every valid problem is accepted."""
    call(case, problem, problem.materialize(case.device))
    return None


def inputs_unmodified(case: Case, problem: Problem) -> oracles.Finding | None:
    """Oracle 6: the call leaves its input, weight and bias bits (and strides) as they were."""
    tensors = problem.materialize(case.device)
    before = [None if t is None else (oracles.bits(t).clone(), t.stride()) for t in tensors]
    call(case, problem, tensors)
    changed = [name for name, t, saved in zip(("input", "weight", "bias"), tensors, before)
               if t is not None and not (torch.equal(oracles.bits(t), saved[0]) and t.stride() == saved[1])]
    return oracles.Finding("inputs-unmodified", f"the call modified its {', '.join(changed)}") if changed else None


def layout(case: Case, problem: Problem) -> oracles.Finding | None:
    """Oracle 6: the same values in another memory layout agree with the contiguous result within
    both allowances (each lies within one allowance of the reference)."""
    evaluation = _trusted(Evaluation(case, problem))
    y_laid = call(case, problem, evaluation.given)
    y_plain = call(case, problem, problem.materialize(case.device, layout="contiguous"))
    finding = _shape_of(y_laid, evaluation)
    if finding is None:
        finding = oracles.exceedance("layout", y_laid, oracles.widen(y_plain), 2 * evaluation.allowance(),
                                     evaluation.M, evaluation.K, case.dtype)
        if finding is not None:
            finding.summary = f"{problem.layout} and contiguous results differ: {finding.summary}"
    return _explained(finding, evaluation, "index")


def special_values(case: Case, problem: Problem) -> oracles.Finding | None:
    """Oracle 6: NaN and +-Inf reach exactly the outputs the definition says."""
    evaluation = Evaluation(case, problem)
    y = call(case, problem, evaluation.given)
    finding = _shape_of(y, evaluation)
    if finding is None:
        finite = Tensors(*(None if t is None else torch.where(torch.isfinite(t), t, torch.zeros((), dtype=t.dtype))
                           for t in evaluation.values))
        finding = oracles.check_special_values(y, evaluation.y_ref, magnitude(finite, problem), case.dtype)
    return _explained(finding, evaluation, "first wrong element")


def determinism(case: Case, problem: Problem) -> oracles.Finding | None:
    """Oracle 6: two identical calls give identical bits (for implementations that declare it)."""
    first = oracles.bits(call(case, problem, problem.materialize(case.device)))
    second = oracles.bits(call(case, problem, problem.materialize(case.device)))
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


def run_check(case: Case, problem: Problem, check: str) -> None:
    """Run one check inside a Hypothesis test: label the problem, redraw untrusted ones, steer the
    search towards large errors, and conclude."""
    __tracebackhide__ = True
    campaign.stop_if_spent(record_unminimized)
    stats: dict[str, float] = {}
    try:
        finding = bound(case, problem, stats) if check == "bound" else CHECKS[check](case, problem)
    except Untrusted as untrusted:
        event(f"redrawn: {untrusted}")
        reject()
    except CallFailed as failed:
        finding = failed.finding
    if problem.broken_rule is None:
        label(problem)
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
