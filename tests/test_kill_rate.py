"""The gate, in its default ci profile, flags every planted bug by the check expected of it, found by
search (a replay of the corpus does not count), with the failing test and the finding named."""

from __future__ import annotations

import pytest

from reports.records import read_report
from suites.checks import CHECKS

from .planted.catalog import EXPECTED, MODULES


@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_every_planted_bug_is_flagged_by_its_expected_check(bug, tmp_path, gate):
    check = CHECKS[EXPECTED[bug][1]]
    out = tmp_path / "out"
    plugins = [arg for module in MODULES for arg in ("--impl-module", module)]
    run = gate(*plugins, "--impl", bug, "-k", check.test, "--report-dir", str(out), "--contain", "none")
    assert run.returncode == 1 and run.failed(check.test), run.output[-3000:]
    flagged = {record["check"] for record in read_report(out / "report.json")["discrepancies"]
               if record["status"] == "unexpected"}
    assert flagged & set(check.kinds), f"{bug}: flagged {flagged}, not {check.kinds}"
    assert any(f"{bug}-cpu-" in line and f": {kind}:" in line for line in run.output.splitlines()
               for kind in check.kinds), run.output[-3000:]
