"""The false-positive soak: the gate's ``soak`` profile (400 random examples per test) over every
built-in implementation and every correct variant in tests/planted/correct_variants.py, every dtype
and every check. A correct kernel must never be flagged, so every unexpected discrepancy it reports is
either a real bug of the implementation under test (PyTorch's own kernels are real code) or a false
alarm of the gate, and is listed for a person to judge.

    python benchmarks/soak.py [--seed 20261128] [--examples 400] [--workers auto] > benchmarks/results/soak.md
    python benchmarks/soak.py --impl tensorflow-cpu --impl openvino-cpu > benchmarks/results/soak_frameworks.md

``--examples`` sets the soak profile's examples per test (CONVT_SOAK_EXAMPLES).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from convt_conformance.reports.records import read_report  # noqa: E402
from convt_conformance.suites.environment import cpu_name  # noqa: E402
from tests.planted.catalog import (  # noqa: E402
    CORRECT,
    CORRECT_AT_SIZE,
    CORRECT_MODULE,
    CUSTOM_BACKWARD_MODULE,
    MODULE_VARIANTS_MODULE,
    SIZE_MODULE,
)

# What a variant does not claim is declared now (special_values=False, built_on=): nothing is set aside.
NOT_CLAIMED: set[tuple[str, str]] = set()
BUILT_INS = ("naive", "im2col", "zero-insertion", "torch-cpu-default", "torch-cpu-native", "torch-cpu-channels-last",
             "torch-module", "torch-meta", "torch-fake", "torch-compile", "torch-compile-epilogue",
             "torch-compile-freezing")
# Correct variants of the gradient and module entry points and of large-problem kernels, in their own modules.
MORE_CORRECT = {CUSTOM_BACKWARD_MODULE: ("correct-custom-backward",),
                MODULE_VARIANTS_MODULE: ("correct-module-full-output-size-range",), SIZE_MODULE: CORRECT_AT_SIZE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", default="20261128")
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--examples", type=int, default=400, help="examples per test")
    parser.add_argument("-k", dest="tests", default=None, help="only the tests pytest's -k selects")
    parser.add_argument("--impl", action="append", default=[],
                        help="soak these implementations instead (repeatable; e.g. the third-party frameworks)")
    parser.add_argument("--contain", default="all", choices=("all", "plugins", "none"),
                        help="which implementations run in worker processes (default all: a crash of a built-in "
                             "becomes a finding instead of ending a pytest worker)")
    args = parser.parse_args()
    names = tuple(args.impl) or BUILT_INS + CORRECT + sum(MORE_CORRECT.values(), ())
    modules = [arg for module in (CORRECT_MODULE, *MORE_CORRECT) for arg in ("--impl-module", module)]
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "pytest", "suites", "-q", "-rf", "-p", "no:cacheprovider", "-n", args.workers,
                   "--convt-profile", "soak", "--hypothesis-seed", args.seed, *modules,
                   "--contain", args.contain,
                   "--report-dir", out, *(arg for name in names for arg in ("--impl", name))]
        command += ["-k", args.tests] if args.tests else []
        start = time.monotonic()
        environment = {**os.environ, "CONVT_SOAK_EXAMPLES": str(args.examples)}
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=environment)
        elapsed = time.monotonic() - start
        report = read_report(Path(out) / "report.json")
    table = report["summary"]["table"]
    examples = sum(row["examples"] for row in table)
    found = [d for d in report["discrepancies"] if d["status"] == "unexpected"]
    unexpected = [d for d in found if (d["impl"], d["check"]) not in NOT_CLAIMED]
    not_claimed = [d for d in found if (d["impl"], d["check"]) in NOT_CLAIMED]
    print(f"machine: {cpu_name()}, {args.workers} workers, torch {torch.__version__}, Python "
          f"{platform.python_version()}; soak profile ({args.examples} examples per test), seed {args.seed}; "
          f"{elapsed / 60:.0f} min; pytest exit {done.returncode}"
          f"{f'; tests selected by -k {args.tests!r}' if args.tests else ''}\n")
    print(f"implementations: {', '.join(names)}\n")
    unclaimed = ", ".join(f"{pair} ({n})" for pair, n in sorted(Counter(
        f"{d['impl']} {d['check']}" for d in not_claimed).items()))
    print(f"examples checked: {examples:,}; known discrepancies matched: {sum(row['known'] for row in table):,}; "
          f"unexpected discrepancies: {len(unexpected)} (and {len(not_claimed)} on what a variant does not claim"
          f"{': ' + unclaimed if unclaimed else ''})\n")
    by_check: Counter[str] = Counter()
    for row in table:
        by_check[row["check"]] += row["examples"]
    print("| check | examples | unexpected |\n|---|---:|---:|")
    flagged = Counter(d["check"] for d in unexpected)
    for check, count in sorted(by_check.items()):
        print(f"| {check} | {count:,} | {flagged.get(check, 0)} |")
    failed_tests = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
    if failed_tests:
        print(f"\nFailed tests ({len(failed_tests)}): " + ", ".join(f"`{test}`" for test in failed_tests))
    if unexpected:
        print("\nUnexpected discrepancies (each to be judged: a real bug, or a false alarm of the gate):\n")
        for d in unexpected:
            print(f"- `{d['impl']}` {d['dtype']} {d['check']}: {d['summary']}\n  `{d['descriptor']}`")


if __name__ == "__main__":
    main()
