"""Causes per planted bug: every planted bug of the kill table run together through the gate, as a user
would run it, and report.json's causes counted per bug. One bug should read as one cause, however many
checks, dims, layouts and dtypes met it.

    python benchmarks/causes_per_bug.py > benchmarks/results/causes_per_bug_<machine>.md

Each bug runs in float32 where it declares it, else in the first dtype it declares (the half-precision
bugs); one gate run per dtype, ``-n auto``, the ci profile.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from convt_conformance import impls  # noqa: E402
from convt_conformance.reports.records import read_report  # noqa: E402
from convt_conformance.suites.environment import cpu_name  # noqa: E402
from tests.planted.catalog import EXPECTED, MODULES  # noqa: E402


def dtype_of(name: str) -> str:
    declared = impls.get(name).dtypes
    return "float32" if "float32" in declared else declared[0]


def gate(bugs: list[str], dtype: str, out: Path) -> tuple[float, dict]:
    """Seconds and report.json of one gate run on ``bugs`` in ``dtype``."""
    arguments = [sys.executable, "-m", "convt_conformance", "gate", "-n", "auto", "--dtype", dtype,
                 "--report-dir", str(out)]
    for module in MODULES:
        arguments += ["--impl-module", module]
    for bug in bugs:
        arguments += ["--impl", bug]
    start = time.perf_counter()
    subprocess.run(arguments, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start, read_report(out / "report.json")


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    for module in MODULES:
        impls.load_plugin(module)
    by_dtype = defaultdict(list)
    for bug in EXPECTED:
        by_dtype[dtype_of(bug)].append(bug)
    causes, findings, seconds = defaultdict(list), defaultdict(int), 0.0
    with tempfile.TemporaryDirectory() as scratch:
        for dtype, bugs in sorted(by_dtype.items()):
            took, report = gate(bugs, dtype, Path(scratch) / dtype)
            seconds += took
            for cause in report["causes"]:
                if cause["status"] == "unexpected":
                    causes[cause["impl"]].append(cause)
                    findings[cause["impl"]] += cause["count"]
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"Python {platform.python_version()}; {len(EXPECTED)} planted bugs, {len(by_dtype)} gate runs "
          f"({', '.join(f'{d}: {len(b)}' for d, b in sorted(by_dtype.items()))}), {seconds:.0f} s\n")
    print("| planted bug | dtype | causes | findings | the cause(s): defect; met in checks |")
    print("|---|---|---:|---:|---|")
    for bug in EXPECTED:
        found = causes.get(bug, [])
        text = "<br>".join(f"{c['defect']}; {', '.join(c['checks'])}" for c in found) or "(not found)"
        print(f"| {bug} | {dtype_of(bug)} | {len(found)} | {findings.get(bug, 0)} | {text} |")
    one = sum(1 for bug in EXPECTED if len(causes.get(bug, [])) == 1)
    total = sum(len(causes.get(bug, [])) for bug in EXPECTED)
    print(f"\n{one} of {len(EXPECTED)} bugs read as exactly one cause; {total} causes for {len(EXPECTED)} bugs, "
          f"{sum(findings.values())} findings.")


if __name__ == "__main__":
    main()
