"""One bug, one cause: planted bugs run together read as one cause each in report.json, report.md and the
console, however many checks, dims, layouts and value kinds met them; two defects of one kernel stay two."""

from __future__ import annotations

import pytest

from convt_conformance.reports.causes import group
from convt_conformance.reports.records import read_report

from .conftest import PLANTED
from .test_reports import record

ONE_CAUSE_EACH = ("bug-b5-dilated-extent", "bug-exact-group0-bias", "bug-bound-tf32", "bug-robust-assumes-contiguous",
                  "bug-errors-accepts-big-output-padding")


@pytest.mark.slow
def test_planted_bugs_run_together_read_as_one_cause_each(tmp_path, gate):
    out = tmp_path / "out"
    arguments = ["--impl-module", str(PLANTED / "oracle_bugs.py"), "--impl-module", str(PLANTED / "fault_classes.py"),
                 "--dtype", "float32", "--report-dir", str(out)]
    for bug in (*ONE_CAUSE_EACH, "bug-two-kinds"):
        arguments += ["--impl", bug]
    run = gate(*arguments)
    assert run.returncode == 1
    report = read_report(out / "report.json")
    per_bug = {}
    for cause in report["causes"]:
        per_bug.setdefault(cause["impl"], []).append(cause)
    assert {bug: len(per_bug.get(bug, [])) for bug in ONE_CAUSE_EACH} == dict.fromkeys(ONE_CAUSE_EACH, 1), per_bug
    shape = per_bug["bug-b5-dilated-extent"][0]  # met by many checks in every dims: still one cause
    assert len(shape["checks"]) >= 3 and len(shape["dims"]) >= 2 and shape["count"] >= 5
    assert {c["defect"] for c in per_bug["bug-two-kinds"]} == {  # two defects of one kernel: two causes
        "valid problems refused", "wrong values even on small integers, where every sum is exact"}
    markdown = (out / "report.md").read_text()
    assert markdown.count("\n| ") == 1 + len(report["causes"]) and "#, #" not in markdown
    console = run.output
    assert "ExceptionGroup" not in console and "Traceback" not in console
    assert "kinds of discrepancy met by this test" in console  # bug-two-kinds' exact test met both
    assert console.count("\ncause ") == len(report["causes"])


def _value(check: str, evidence: str | None, shape: list[int], layout: str = "contiguous", **extra) -> dict:
    problem = {"input_shape": shape, "weight_shape": [1, 1] + [2] * (len(shape) - 2), "layout": layout,
               "value_kind": "int" if check == "exact" else "real"}
    return record(check=check, evidence=evidence, problem=problem, summary=f"{len(shape)} of 9 elements wrong",
                  **extra)


def test_wrong_values_group_by_what_the_exact_replay_showed_not_by_check_dims_or_layout():
    records = [_value("exact", "integer", [1, 1, 3]), _value("bound", "integer", [1, 1, 3, 3]),
               _value("adjoint", "integer", [1, 1, 2, 2, 2], "noncontig_input"),
               _value("bound", "rounding", [1, 1, 3]), _value("adjoint", "rounding", [1, 1, 4, 4]),
               _value("layout", "layout", [1, 1, 3, 3], "channels_last"),
               _value("exact", "layout", [1, 1, 3, 3], "channels_last"),
               _value("bound", "rounding", [1, 1, 3], facets={"got": ["nan"], "expected": ["finite"]})]
    found = group(records)
    assert sorted((c["defect"], c["count"]) for c in found) == [
        ("nan returned for finite values", 1), ("rounding error past the allowance, right on small integers", 2),
        ("wrong values even on small integers, where every sum is exact", 3),
        ("wrong values in a non-contiguous layout, right when contiguous", 2)], found
    integer = next(c for c in found if c["count"] == 3)
    assert integer["checks"] == ["exact", "bound", "adjoint"] and integer["dims"] == [1, 2, 3]
    assert records[integer["example"]]["check"] == "exact"  # the smallest, and integers read best


def test_a_shape_defect_is_one_cause_whatever_the_rank_and_a_crash_shows_its_last_output():
    shapes = [record(check="shape", summary=f"shape {(1,) * n} where the formula gives {(2,) * n}",
                     problem={"input_shape": [1] * n, "weight_shape": [1] * n}) for n in (3, 4, 5)]
    crash = record(check="crash", facets={"exit": "SIGABRT"}, summary="killed by SIGABRT",
                   details={"worker output": "loading\nassertion failed: idx < 2147483647\n"})
    found = group([*shapes, crash])
    assert [c["count"] for c in found] == [1, 3]
    assert found[0]["title"] == "killed by SIGABRT; its last output: assertion failed: idx < 2147483647"
    assert found[1]["title"] == "shape (1, 1, 1) where the formula gives (2, 2, 2)"
    assert found[1]["defect"] == "wrong output shape" and found[0]["defect"] == "the process dies (SIGABRT)"
