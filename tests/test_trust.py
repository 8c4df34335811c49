"""Oracle 7: problems that would pass vacuously are recognised and redrawn, never counted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import UnsatisfiedAssumption

import impls
from suites.checks import Untrusted, run_check
from suites.harness import Case, Evaluation
from suites.problem import Problem


def evaluation(**changes) -> Evaluation:
    base = Problem(input_shape=(1, 2, 4), weight_shape=(2, 1, 3), bias=False, stride=(1,), padding=(0,),
                   output_padding=(0,), dilation=(1,), groups=1, dtype="float32", values="real", seed=3)
    return Evaluation(Case(impls.get("naive"), "cpu", "float32"), base.replace(**changes))


def test_an_ordinary_problem_is_trusted():
    assert evaluation().untrusted_reason() is None


def test_a_cropped_away_tap_is_not_evidence():
    # L=1, k=3, padding 1: only the middle tap lands in the single output element.
    assert evaluation(input_shape=(1, 2, 1), padding=(1,)).untrusted_reason() == "a kernel tap never reaches the output"


def test_mostly_zero_outputs_are_not_evidence():
    # stride 4 with a 1-tap kernel: three of every four outputs are structural zeros.
    reason = evaluation(weight_shape=(2, 1, 1), stride=(4,)).untrusted_reason()
    assert reason == "output mostly exact zeros"


def test_a_dead_input_channel_is_not_evidence():
    e = evaluation(values="int")
    x, w, b = e.values
    x[:, 1] = 0
    e.__dict__["values"] = type(e.values)(x, w, b)
    assert e.untrusted_reason() == "an input channel never contributes"


@given(st.just(None))
def test_untrusted_problems_are_redrawn_by_the_value_tests(_):
    naive = Case(impls.get("naive"), "cpu", "float32")
    vacuous = evaluation(input_shape=(1, 2, 1), padding=(1,)).problem
    for check in ("exact", "bound", "adjoint"):
        with pytest.raises(UnsatisfiedAssumption):
            run_check(naive, vacuous.replace(values="int" if check == "exact" else "real"), check)
    run_check(naive, evaluation().problem, "bound")  # an ordinary problem is checked and passes


def test_a_replay_of_a_vacuous_problem_says_so():
    from suites.checks import exact

    with pytest.raises(Untrusted, match="kernel tap never reaches"):
        exact(Case(impls.get("naive"), "cpu", "float32"), evaluation(input_shape=(1, 2, 1), padding=(1,),
                                                                      values="int").problem)
