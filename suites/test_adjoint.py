"""Oracle 4: the adjoint identity <conv(y), x> = <y, convT(x)>, with torch's ordinary convolution."""

from hypothesis import given
from hypothesis import strategies as st

from .checks import problems_for, run_check
from .harness import Case


@given(data=st.data())
def test_adjoint(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("adjoint", case), label="problem"), "adjoint")
