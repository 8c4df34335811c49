"""The check registry: a new check is one decorated function, and the suite runs it everywhere."""

from __future__ import annotations

import re

import torch

from convt_conformance.cli import main as suites_main
from convt_conformance.suites import all_checks, checks, oracles


def test_a_new_check_is_one_record_and_one_function(gate, monkeypatch, capsys):
    registry = dict(checks.CHECKS)  # registered for this test only
    monkeypatch.setattr(checks, "CHECKS", registry)
    monkeypatch.setattr(all_checks, "CHECKS", registry)

    @checks.check("output-finite", "test_output_finite", checks.valid(value_kind="real", min_batch=1),
                  replays="real")
    def output_finite(evaluation):
        y = checks.call(evaluation)
        return None if torch.isfinite(y).all() else oracles.Finding("output-finite", "a non-finite output")

    run = gate("--impl", "naive", "--dtype", "float32", "-k", "test_output_finite")
    assert run.returncode == 0, run.output[-3000:]
    assert re.search(r"^naive\s+output-finite\s+30\s+0\s+0$", run.output, re.M), run.output[-3000:]
    problem = ('{"input_shape": [1, 1, 2], "weight_shape": [1, 1, 2], "bias": false, "stride": [1], '
               '"padding": [0], "output_padding": [0], "dilation": [1], "groups": 1, "dtype": "float32"}')
    assert suites_main(["repro", "--impl", "naive", "--check", "output-finite", "--problem", problem]) == 0
    assert "not reproduced: the check passes" in capsys.readouterr().out


def test_each_check_names_its_test_and_the_kinds_it_reports():
    tests = [check.test for check in all_checks.CHECKS.values()]
    assert len(set(tests)) == len(tests) and all(test.startswith("test_") for test in tests)
    assert checks.check_for("statistical").name == "bound"
    assert set(all_checks.VALUE_CHECKS) == {"exact", "bound", "adjoint", "layout", "grad-exact", "grad-bound",
                                        "double-backward", "output-size"}
    assert checks.check_for("backward-refused").name == "grad-exact"  # the first check that reports it
    assert checks.check_for("output-size-refused").name == "output-size"
