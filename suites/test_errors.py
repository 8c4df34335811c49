"""Oracle 5: every invalid problem raises (no silent result), every valid problem is accepted."""

from hypothesis import given
from hypothesis import strategies as st

from .checks import run_check
from .harness import Case
from .strategies import invalid_problems, problems


@given(data=st.data())
def test_invalid_raises(case: Case, data: st.DataObject) -> None:
    problem = data.draw(invalid_problems(dims=case.impl.dims, dtype=case.dtype_name), label="problem")
    run_check(case, problem, "invalid-accepted")


@given(data=st.data())
def test_valid_accepted(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name), label="problem"),
              "valid-refused")
