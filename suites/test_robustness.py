"""Oracle 6: inputs are never modified, layout does not matter (up to the bound), special values
follow the definition, and deterministic implementations repeat their bits."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .checks import run_check
from .harness import Case
from .strategies import problems

OTHER_LAYOUTS = ("channels_last", "noncontig_input", "noncontig_weight", "expanded_weight")


@given(data=st.data())
def test_inputs_unmodified(case: Case, data: st.DataObject) -> None:
    run_check(case, data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name), label="problem"),
              "inputs-unmodified")


@given(data=st.data())
def test_layout_invariance(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="real", min_batch=1,
                                 layouts=OTHER_LAYOUTS), label="problem")
    run_check(case, problem, "layout")


@given(data=st.data())
def test_special_values(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="special"), label="problem")
    run_check(case, problem, "special-values")


@given(data=st.data())
def test_determinism(case: Case, data: st.DataObject) -> None:
    if not case.impl.is_deterministic(case.device):
        pytest.skip(f"{case.impl.name} does not declare itself deterministic on {case.device}")
    run_check(case, data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name), label="problem"),
              "determinism")
