"""Oracles 2 and 3: values. The exact tier (small integers, zero tolerance) and the bound tier
(random reals, per-element rounding-error allowance plus a per-tensor statistical check)."""

from hypothesis import assume, given, target
from hypothesis import strategies as st

from . import oracles
from .harness import Case, Evaluation, call, conclude, label
from .strategies import problems


def _trusted(evaluation: Evaluation) -> None:
    """Oracle 7: a problem that would pass vacuously is redrawn, not counted."""
    reason = evaluation.untrusted_reason()
    assume(reason is None)


@given(data=st.data())
def test_exact(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="int", min_batch=1),
                        label="problem")
    evaluation = Evaluation(case, problem)
    _trusted(evaluation)
    label(problem)
    y = call(case, problem, evaluation.given)
    finding = oracles.check_exact(y, evaluation.y_ref, case.dtype)
    if finding and "first wrong element" in finding.details:
        finding.details["explanation"] = evaluation.explanation(finding.details["first wrong element"])
    conclude(case, problem, "exact", finding, evaluation.given)


@given(data=st.data())
def test_bound(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="real", min_batch=1),
                        label="problem")
    evaluation = Evaluation(case, problem)
    _trusted(evaluation)
    label(problem)
    y = call(case, problem, evaluation.given)
    finding = oracles.check_shape(y, problem.geometry().output_shape, case.dtype, case.device)
    stats = {}
    if finding is None:
        finding, stats = oracles.check_bound(y, evaluation.y_ref, evaluation.M, evaluation.K,
                                             case.precision, case.dtype, evaluation.y_ref_without_bias)
        target(min(stats["max"], 1e6), label="max error / allowance")
        target(min(stats["rms"], 1e6), label="RMS normalized error")
    if finding and "index" in finding.details:
        finding.details["explanation"] = evaluation.explanation(finding.details["index"])
    conclude(case, problem, "bound", finding, evaluation.given)
