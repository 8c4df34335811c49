"""The specification agrees with PyTorch: output shapes, and which parameter sets raise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from convt_conformance import spec
from convt_conformance.suites.strategies import INVALID_RULES, invalid_problem_sets, invalid_problems, problems

TRANSPOSED = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
# Rules PyTorch 2.13 itself does not enforce on every path (declared in reports/expectations.toml).
TORCH_GAPS = {"bias dtype != input dtype"}


def torch_native(problem):
    x, w, b = problem.materialize()
    torch._C._set_mkldnn_enabled(False)
    try:
        return TRANSPOSED[problem.dims](x, w, b, **{k: v for k, v in problem.kwargs().items()})
    finally:
        torch._C._set_mkldnn_enabled(True)


@settings(max_examples=200)
@given(problem=problems(dtype="float64"))
def test_output_shape_matches_torch(problem):
    assert torch_native(problem).shape == problem.geometry().output_shape


@settings(max_examples=300)
@given(problem=invalid_problems(dtype="float64"))
def test_invalid_problems_raise_in_spec_and_in_torch(problem):
    with pytest.raises(spec.InvalidProblem):
        problem.geometry()
    if problem.broken_rule not in TORCH_GAPS:
        with pytest.raises((RuntimeError, ValueError, TypeError)):
            torch_native(problem)


@pytest.mark.parametrize("rule", INVALID_RULES)
@settings(database=None, max_examples=20, deadline=None)
@given(data=st.data())
def test_every_invalid_rule_breaks_validity(rule, data):
    (problem,) = data.draw(invalid_problem_sets(dtype="float32", rules=1, among=(rule,)))
    assert problem.broken_rule == rule
    with pytest.raises(ValueError):
        problem.geometry()


@pytest.mark.parametrize("kwargs, message", [
    (dict(stride=0), "stride must be at least 1"),
    (dict(padding=-1), "padding must be at least 0"),
    (dict(output_padding=2, stride=2), "output_padding 2 on axis 0 must be smaller than max(stride=2, dilation=1)"),
    (dict(groups=0), "groups must be at least 1"),
    (dict(stride=(1, 1, 1)), "stride must be an int or a tuple of 2 ints"),
    (dict(padding=3), "output size (-3, -3) is not positive"),
])
def test_messages_name_the_argument_at_fault(kwargs, message):
    with pytest.raises(spec.InvalidProblem) as raised:
        spec.check_arguments((1, 1, 2, 2), (1, 1, 2, 2), None, **kwargs)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_output_padding_at_or_above_stride_is_valid_below_dilation():
    geometry = spec.check_arguments((1, 1, 4), (1, 1, 3), None, stride=1, output_padding=1, dilation=2)
    assert geometry.output_size == (4 - 1 + 2 * 2 + 1 + 1,)


def test_one_element_sequences_broadcast_like_pytorch():
    assert spec.as_tuple((3,), 2, "stride") == (3, 3)
    assert spec.as_tuple(2, 3, "padding") == (2, 2, 2)


def test_empty_batch_is_valid_and_mismatched_dtypes_are_not():
    assert spec.check_arguments((0, 1, 3), (1, 2, 2), (2,)).output_shape == (0, 2, 4)
    with pytest.raises(spec.InvalidProblem, match="share one dtype"):
        spec.validate(torch.ones(1, 1, 3), torch.ones(1, 1, 2, dtype=torch.float64))


def test_terms_of_follows_the_index_map():
    geometry = spec.check_arguments((1, 1, 3), (1, 1, 3), None, stride=2, padding=1, dilation=1)
    terms = list(spec.terms_of(geometry, (0, 0, 1)))  # output 1 = full index 2: i*2 + t = 2
    assert sorted((t.input_index, t.weight_index) for t in terms) == [((0, 0, 0), (0, 0, 2)), ((0, 0, 1), (0, 0, 0))]
