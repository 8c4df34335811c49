"""Oracle 5: every invalid problem raises (no silent result), every valid problem is accepted."""

from hypothesis import given
from hypothesis import strategies as st

from .checks import problems_for, run_check
from .harness import Case


@given(data=st.data())
def test_invalid_raises(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("invalid-accepted", case), label="problem"), "invalid-accepted")


@given(data=st.data())
def test_valid_accepted(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("valid-refused", case), label="problem"), "valid-refused")
