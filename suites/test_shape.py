"""Oracle 1: the output's shape follows the formula, its dtype is the input's, its device the input's;
a batch of 0 is valid and gives an empty result of the right shape."""

from hypothesis import given
from hypothesis import strategies as st

from .checks import problems_for, run_check
from .harness import Case


@given(data=st.data())
def test_shape(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("shape", case), label="problem"), "shape")


@given(data=st.data())
def test_empty_batch(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("empty-batch", case), label="problem"), "empty-batch")
