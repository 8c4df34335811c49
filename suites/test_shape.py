"""Oracle 1: the output's shape follows the formula, its dtype is the input's, its device the input's."""

from hypothesis import given
from hypothesis import strategies as st

from .checks import run_check
from .harness import Case
from .strategies import problems


@given(data=st.data())
def test_shape(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name), label="problem"), "shape")


@given(data=st.data())
def test_empty_batch(case: Case, data: st.DataObject) -> None:
    """A batch of 0 is valid and gives an empty result of the right shape."""
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, batch=0), label="problem")
    run_check(case, problem, "empty-batch")
