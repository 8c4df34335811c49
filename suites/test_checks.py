"""Every registered check as a Hypothesis test, on every selected implementation x device x dtype
(test ids read ``test_bound[im2col-cpu-float16]``). The checks and what each draws are in
``suites/checks.py``; a new check there is a new test here."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .all_checks import CHECKS, Check
from .case import Case
from .run import Run
from .verdicts import run_checks


def _test_of(check: Check):
    def test(case: Case, conformance_run: Run, data: st.DataObject) -> None:
        reason = check.skip_reason(case)
        if reason:
            pytest.skip(reason)
        run_checks(conformance_run, case, data.draw(check.draws(case), label="problems"), check.name)

    test.__name__ = test.__qualname__ = check.test
    test.__doc__ = check.function.__doc__
    return given(data=st.data())(test)


globals().update({check.test: _test_of(check) for check in CHECKS.values()})
