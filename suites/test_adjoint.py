"""Oracle 4: the adjoint identity <conv(y), x> = <y, convT(x)>, with torch's ordinary convolution."""

from hypothesis import given
from hypothesis import strategies as st

from .checks import run_check
from .harness import Case
from .strategies import problems


@given(data=st.data())
def test_adjoint(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="real", min_batch=1),
                        label="problem")
    run_check(case, problem, "adjoint")
