"""Oracle 6: inputs are never modified, layout does not matter (up to the bound), special values
follow the definition, and deterministic implementations repeat their bits."""

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from . import oracles
from .harness import Case, Evaluation, call, conclude, label
from .problem import magnitude
from .strategies import problems


@given(data=st.data())
def test_inputs_unmodified(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name), label="problem")
    label(problem)
    tensors = problem.materialize(case.device)
    before = [None if t is None else (oracles.bits(t).clone(), t.stride()) for t in tensors]
    call(case, problem, tensors)
    changed = [name for name, t, saved in zip(("input", "weight", "bias"), tensors, before)
               if t is not None and not (torch.equal(oracles.bits(t), saved[0]) and t.stride() == saved[1])]
    finding = oracles.Finding("inputs-unmodified", f"the call modified its {', '.join(changed)}") if changed else None
    conclude(case, problem, "inputs-unmodified", finding, tensors)


@given(data=st.data())
def test_layout_invariance(case: Case, data: st.DataObject) -> None:
    """The same values in another memory layout give the same result, up to both allowances."""
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="real", min_batch=1,
                                 layouts=("channels_last", "noncontig_input", "noncontig_weight",
                                          "expanded_weight")), label="problem")
    evaluation = Evaluation(case, problem)
    assume(evaluation.untrusted_reason() is None)
    label(problem)
    y_laid = call(case, problem, evaluation.given)
    y_plain = call(case, problem, problem.materialize(case.device, layout="contiguous"))
    finding = oracles.check_shape(y_laid, evaluation.geometry.output_shape, case.dtype, case.device)
    if finding is None:
        # Each result lies within one allowance of the reference, so they differ by at most two.
        allowed = 2 * evaluation.allowance()
        finding = oracles.exceedance("layout", y_laid, oracles.widen(y_plain), allowed, evaluation.M,
                                     evaluation.K, case.dtype)
        if finding is not None:
            finding.summary = f"{problem.layout} and contiguous results differ: {finding.summary}"
    conclude(case, problem, "layout", finding, evaluation.given)


def _finite_magnitude(values, problem) -> torch.Tensor:
    finite = [None if t is None else torch.where(torch.isfinite(t), t, torch.zeros((), dtype=t.dtype))
              for t in values]
    return magnitude(type(values)(*finite), problem)


@given(data=st.data())
def test_special_values(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="special"),
                        label="problem")
    label(problem)
    evaluation = Evaluation(case, problem)
    y = call(case, problem, evaluation.given)
    finding = oracles.check_shape(y, evaluation.geometry.output_shape, case.dtype, case.device)
    if finding is None:
        finding = oracles.check_special_values(y, evaluation.y_ref,
                                               _finite_magnitude(evaluation.values, problem), case.dtype)
    conclude(case, problem, "special-values", finding, evaluation.values)


@given(data=st.data())
def test_determinism(case: Case, data: st.DataObject) -> None:
    """Two identical calls give identical bits, for implementations that declare it on this device."""
    if not case.impl.is_deterministic(case.device):
        pytest.skip(f"{case.impl.name} does not declare itself deterministic on {case.device}")
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="real"), label="problem")
    label(problem)
    tensors = problem.materialize(case.device)
    first = oracles.bits(call(case, problem, tensors))
    second = oracles.bits(call(case, problem, problem.materialize(case.device)))
    finding = None
    if first.shape != second.shape or not torch.equal(first, second):
        differing = math.nan if first.shape != second.shape else int((first != second).sum())
        finding = oracles.Finding("determinism", f"two identical calls differ in {differing} element(s)")
    conclude(case, problem, "determinism", finding, tensors)
