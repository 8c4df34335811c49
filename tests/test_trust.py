"""Oracle 7: values that would make a value check vacuous are re-seeded, never the geometry; a problem
is redrawn only when no seed gives meaningful values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import UnsatisfiedAssumption

from convt_conformance import impls
from convt_conformance.suites import checks, oracles
from convt_conformance.suites.case import Case
from convt_conformance.suites.evaluation import Evaluation, GradientEvaluation
from convt_conformance.suites.problem import Problem
from convt_conformance.suites.run import Run
from convt_conformance.suites.verdicts import run_check

from .planted.catalog import CUSTOM_BACKWARD_MODULE

NAIVE = Case(impls.get("naive"), "cpu", "float32")


def evaluation(**changes) -> Evaluation:
    base = Problem(input_shape=(1, 2, 4), weight_shape=(2, 1, 3), bias=False, stride=(1,), padding=(0,),
                   output_padding=(0,), dilation=(1,), groups=1, dtype="float32", value_kind="real", seed=3)
    return Evaluation(NAIVE, base.replace(**changes))


def test_an_ordinary_problem_is_meaningful():
    assert evaluation().vacuous_reason() is None


def test_cropped_away_taps_are_checked():
    # L=1, k=3, padding 1: only the middle tap lands in the single output element. The geometry is a
    # bug-prone region of its own, so the value checks must run there.
    cropped = evaluation(input_shape=(1, 2, 1), padding=(1,))
    assert cropped.vacuous_reason() is None
    for check in ("exact", "bound", "adjoint", "layout"):
        problem = cropped.problem.replace(value_kind="int" if check == "exact" else "real")
        ran, finding = checks.run_on(NAIVE, problem, check)
        assert finding is None and ran.problem.padding == (1,)


def test_structural_zeros_are_evidence_not_vacuity():
    # stride 4 with a 1-tap kernel: three of every four outputs are structural zeros, which must be 0.
    sparse = evaluation(weight_shape=(2, 1, 1), stride=(4,))
    assert (sparse.y_ref == 0).double().mean() > 0.5
    assert sparse.vacuous_reason() is None


def test_outputs_that_cancel_where_products_land_are_vacuous():
    e = evaluation(weight_shape=(2, 1, 1))
    x, w, b = e.values
    x[:, 1] = x[:, 0]
    w[1] = -w[0]
    e.__dict__["values"] = type(e.values)(x, w, b)
    assert e.vacuous_reason() == "output mostly exact zeros where products land"


def test_a_dead_input_channel_is_vacuous_and_reseeded():
    base = evaluation(input_shape=(1, 2, 1), value_kind="int").problem
    dead = next(base.replace(seed=s) for s in range(1000)
                if Evaluation(NAIVE, base.replace(seed=s)).vacuous_reason() == "an input channel never contributes")
    chosen = checks.trusted(NAIVE, dead)
    assert chosen.problem.seed != dead.seed and chosen.problem.replace(seed=dead.seed) == dead
    assert chosen.vacuous_reason() is None


def test_a_gradient_that_cancels_to_zero_is_vacuous_so_a_backward_that_returns_zeros_is_caught():
    # small integers can make grad_input sum to exactly 0; a backward that returns zeros (a real oneDNN defect,
    # planted here for a kernel that reaches past a cropped input) would then pass as exact
    impls.load_plugin(CUSTOM_BACKWARD_MODULE)
    zeros = Case(impls.get("bug-grad-input-zero-kernel-past-input"), "cpu", "float32")
    base = Problem(input_shape=(1, 1, 1), weight_shape=(1, 1, 5), bias=False, stride=(1,), padding=(1,),
                   output_padding=(0,), dilation=(1,), groups=1, dtype="float32", value_kind="int", seed=0)
    cancelling = next(base.replace(seed=s) for s in range(1000)
                      if _grad_input_cancels_alone(GradientEvaluation(zeros, base.replace(seed=s))))
    ran, finding = checks.run_on(zeros, cancelling, "grad-exact")
    assert ran.problem.seed != cancelling.seed and ran.problem.replace(seed=cancelling.seed) == cancelling
    assert finding is not None and finding.summary.startswith("grad_input"), finding
    assert GradientEvaluation(zeros, cancelling).vacuous_reason() == "grad_input mostly exact zeros where terms land"


def _grad_input_cancels_alone(evaluation: GradientEvaluation) -> bool:
    """grad_input sums to exactly 0 on values nothing else makes vacuous (the forward, g's channels)."""
    return bool(evaluation.first_reference["input"].eq(0).all()) and evaluation.grad_output.count_nonzero() > 0 \
        and Evaluation.vacuous_reason(evaluation) is None


def test_a_problem_no_seed_helps_is_redrawn(monkeypatch):
    monkeypatch.setattr(oracles, "vacuous_reason", lambda *args: "always vacuous (patched)")

    @given(st.just(None))
    def value_test(_):
        with pytest.raises(UnsatisfiedAssumption):
            run_check(Run(), NAIVE, evaluation().problem, "bound")

    value_test()


def test_a_replay_that_no_seed_helps_says_so(monkeypatch):
    monkeypatch.setattr(oracles, "vacuous_reason", lambda *args: "always vacuous (patched)")
    with pytest.raises(checks.Untrusted, match="always vacuous"):
        checks.run_on(NAIVE, evaluation(value_kind="int").problem, "exact")
