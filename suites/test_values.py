"""Oracles 2 and 3: values. The exact tier (small integers, zero tolerance) and the bound tier
(random reals, per-element rounding-error allowance plus a per-tensor statistical check). Both redraw
problems that would pass vacuously (oracle 7)."""

from hypothesis import given
from hypothesis import strategies as st

from .checks import run_check
from .harness import Case
from .strategies import problems


@given(data=st.data())
def test_exact(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="int", min_batch=1),
                        label="problem")
    run_check(case, problem, "exact")


@given(data=st.data())
def test_bound(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="real", min_batch=1),
                        label="problem")
    run_check(case, problem, "bound")
