"""The gate, in its default ci profile, flags every planted bug by the check expected of it."""

from __future__ import annotations

from reports.records import read_report

from .planted.catalog import EXPECTED, MODULES


def test_every_planted_bug_is_flagged_by_its_expected_check(tmp_path, gate):
    out = tmp_path / "out"
    args = [arg for module in MODULES for arg in ("--impl-module", module)]
    args += [arg for bug in EXPECTED for arg in ("--impl", bug)]
    run = gate(*args, "--report-dir", str(out), timeout=1800)
    assert run.returncode == 1, run.output[-3000:]
    flagged: dict[str, set[str]] = {}
    for record in read_report(out / "report.json")["discrepancies"]:
        # Found by search alone: a replay of the corpus (historical bugs) does not count.
        if record["status"] == "unexpected" and "test_replay" not in record["test"]:
            flagged.setdefault(record["impl"], set()).add(record["check"])
    # the bound test reports either tier: a per-element "bound" or a per-tensor "statistical" finding
    accepted = {"bound": {"bound", "statistical"}}
    missed = {bug: check for bug, (_, check) in EXPECTED.items()
              if not accepted.get(check, {check}) & flagged.get(bug, set())}
    assert not missed, f"not flagged by the expected check: {missed}; flagged: {flagged}"
