"""Oracles 2 and 3: values. The exact tier (small integers, zero tolerance) and the bound tier
(random reals, per-element rounding-error allowance plus a per-tensor statistical check). Both redraw
problems that would pass vacuously (oracle 7)."""

from hypothesis import given
from hypothesis import strategies as st

from .checks import problems_for, run_check
from .harness import Case


@given(data=st.data())
def test_exact(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("exact", case), label="problem"), "exact")


@given(data=st.data())
def test_bound(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("bound", case), label="problem"), "bound")
