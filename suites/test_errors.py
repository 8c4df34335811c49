"""Oracle 5: every invalid problem raises (no silent result), every valid problem is accepted."""

from hypothesis import event, given
from hypothesis import strategies as st

from . import oracles
from .harness import Case, call, conclude, label
from .strategies import invalid_problems, problems


@given(data=st.data())
def test_invalid_raises(case: Case, data: st.DataObject) -> None:
    problem = data.draw(invalid_problems(dims=case.impl.dims, dtype=case.dtype_name), label="problem")
    event(f"rule: {problem.broken_rule}")
    tensors = problem.materialize(case.device)
    try:
        y = case.impl.fn(*tensors, **problem.kwargs())
    except Exception as exc:  # noqa: BLE001  (any exception is a refusal; record which)
        event(f"raised {type(exc).__name__}")
        conclude(case, problem, "invalid-accepted", None)
        return
    conclude(case, problem, "invalid-accepted", oracles.Finding(
        "invalid-accepted", f"accepted a problem that breaks {problem.broken_rule!r} and returned "
        f"shape {tuple(y.shape)} {y.dtype}"), tensors)


@given(data=st.data())
def test_valid_accepted(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name), label="problem")
    label(problem)
    call(case, problem, problem.materialize(case.device))
    conclude(case, problem, "valid-refused", None)
