"""Oracle 5: every invalid problem raises (no silent result), every valid problem is accepted."""

from hypothesis import given
from hypothesis import strategies as st

from .checks import problems_for, run_check
from .harness import Case
from .strategies import invalid_problem_sets


@given(data=st.data())
def test_invalid_raises(case: Case, data: st.DataObject) -> None:
    for problem in data.draw(invalid_problem_sets(dims=case.impl.dims, dtype=case.dtype_name), label="problems"):
        run_check(case, problem, "invalid-accepted")


@given(data=st.data())
def test_valid_accepted(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("valid-refused", case), label="problem"), "valid-refused")
