"""Oracle 6: inputs are never modified, layout does not matter (up to the bound), special values
follow the definition, and deterministic implementations repeat their bits."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .checks import problems_for, run_check
from .harness import Case


@given(data=st.data())
def test_inputs_unmodified(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("inputs-unmodified", case), label="problem"), "inputs-unmodified")


@given(data=st.data())
def test_layout_invariance(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("layout", case), label="problem"), "layout")


@given(data=st.data())
def test_special_values(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems_for("special-values", case), label="problem"), "special-values")


@given(data=st.data())
def test_determinism(case: Case, data: st.DataObject) -> None:
    if not case.impl.is_deterministic(case.device):
        pytest.skip(f"{case.impl.name} does not declare itself deterministic on {case.device}")
    run_check(case, data.draw(problems_for("determinism", case), label="problem"), "determinism")
