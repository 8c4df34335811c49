"""Every case of a test draws its own problems: Hypothesis keys each parametrization by its node id."""

from __future__ import annotations

import re


def test_each_case_draws_its_own_problems(gate):
    run = gate("--impl", "naive", "--impl", "im2col", "--dtype", "float64", "-k", "test_shape",
               "--hypothesis-show-statistics")
    assert run.returncode == 0, run.output[-3000:]
    blocks = re.split(r"^suites/test_checks\.py::test_shape\[", run.output, flags=re.M)[1:]
    events = {block.split("]")[0]: sorted(re.findall(r"^\s+\* .*$", block, re.M)) for block in blocks}
    assert set(events) == {"naive-cpu-float64", "im2col-cpu-float64"}, run.output[-3000:]
    # Drawn alike, the two cases would show the same events in the same proportions.
    assert events["naive-cpu-float64"] != events["im2col-cpu-float64"]
