"""The float64 reference (the naive definition) agrees with a second, independent float64 route:
the vector-Jacobian product of the forward convolution (torch autograd)."""

from __future__ import annotations

import torch
from hypothesis import given, settings

from convt_conformance.impls import naive
from convt_conformance.reference import reference
from convt_conformance.suites.problem import term_count
from convt_conformance.suites.strategies import problems

from .planted.correct_variants import autograd_of_convolution


@settings(max_examples=150)
@given(problem=problems(dtype="float64", value_kind="real"))
def test_reference_matches_autograd_of_convolution(problem):
    x, w, b = problem.tensors()
    expected = autograd_of_convolution(x, w, b, **problem.kwargs())
    got = reference(x, w, b, **problem.kwargs())
    # Both are float64 sums of the same K terms: they differ by at most 2*gamma_K*M (rounding only).
    K = term_count((x, w, b), problem)
    M = reference(x.abs(), w.abs(), None if b is None else b.abs(), **problem.kwargs())
    allowed = 2 * K * 2.0**-53 * M * 1.0001 + 1e-300
    assert got.shape == expected.shape
    assert torch.all((got - expected).abs() <= allowed)


@settings(max_examples=100)
@given(problem=problems(dtype="complex128", value_kind="real"))
def test_complex_reference_matches_autograd_of_convolution(problem):
    x, w, b = problem.tensors()
    expected = autograd_of_convolution(x, w, b, **problem.kwargs())
    got = reference(x, w, b, **problem.kwargs())
    scale = reference(x.abs(), w.abs(), None if b is None else b.abs(), **problem.kwargs())
    K = term_count((x, w, b), problem)
    assert torch.all((got - expected).abs() <= 8 * K * 2.0**-53 * scale + 1e-300)


@settings(max_examples=100)
@given(problem=problems(dtype="float64", value_kind="real"))
def test_term_count_is_the_convolution_of_ones(problem):
    # K is built per axis; the definition applied to all-ones tensors counts the same terms
    ones = [None if t is None else torch.ones(t.shape, dtype=torch.float64) for t in problem.tensors()]
    assert torch.equal(term_count(problem.tensors(), problem), reference(*ones, **problem.kwargs()))


@settings(max_examples=100)
@given(problem=problems(dtype="float64", value_kind="real"))
def test_reference_sums_what_the_per_tap_loop_sums(problem):
    # the reference forms all products at once; the naive implementation adds them tap by tap
    x, w, b = problem.tensors()
    got = reference(x, w, b, **problem.kwargs())
    looped = naive.conv_transpose(x, w, b, **problem.kwargs())
    K = term_count((x, w, b), problem)
    M = reference(x.abs(), w.abs(), None if b is None else b.abs(), **problem.kwargs())
    assert got.shape == looped.shape
    assert torch.all((got - looped).abs() <= 2 * K * 2.0**-53 * M * 1.0001 + 1e-300)


@settings(max_examples=60)
@given(problem=problems(dtype="float64", value_kind="int"))
def test_reference_is_exact_on_integers(problem):
    x, w, b = problem.tensors()
    assert torch.equal(reference(x, w, b, **problem.kwargs()), naive.conv_transpose(x, w, b, **problem.kwargs()))
