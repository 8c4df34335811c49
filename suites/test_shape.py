"""Oracle 1: the output's shape follows the formula, its dtype is the input's, its device the input's."""

from hypothesis import given
from hypothesis import strategies as st

from . import oracles
from .harness import Case, call, conclude, label
from .strategies import problems


@given(data=st.data())
def test_shape(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name), label="problem")
    label(problem)
    tensors = problem.materialize(case.device)
    y = call(case, problem, tensors)
    finding = oracles.check_shape(y, problem.geometry().output_shape, case.dtype, case.device)
    conclude(case, problem, "shape", finding, tensors)


@given(data=st.data())
def test_empty_batch(case: Case, data: st.DataObject) -> None:
    """A batch of 0 is valid and gives an empty result of the right shape."""
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, batch=0), label="problem")
    label(problem)
    tensors = problem.materialize(case.device)
    y = call(case, problem, tensors)
    finding = oracles.check_shape(y, problem.geometry().output_shape, case.dtype, case.device)
    conclude(case, problem, "empty-batch", finding, tensors)
