"""Each known-discrepancy rule's breadth: the share of the problems the gate draws for the implementations,
dtypes and checks a rule names that lie in its region (``when`` and ``where``), i.e. that it could excuse
before its fingerprint is asked. A rule with a ``broad`` reason may exceed the limit; no other may.

    python benchmarks/rule_breadth.py [--examples 300] [--out benchmarks/results/rule_breadth.md]

Problems come from each check's own strategy (derandomized), for every implementation the rule names
that is usable here, in every dtype it names and the implementation supports; rules out of force on this
machine are measured too (their region does not depend on it).
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from convt_conformance.reports.expectations import BREADTH_LIMIT, load_rules  # noqa: E402
from convt_conformance.suites.breadth import breadth  # noqa: E402
from convt_conformance.suites.environment import cpu_name  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="examples drawn per check, dtype and implementation")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    lines = [f"machine: {cpu_name()}, torch {torch.__version__}, Python {platform.python_version()}; "
             f"{args.examples} examples per check, dtype and implementation; limit {100 * BREADTH_LIMIT:g}%",
             "", "| rule | problems drawn | in its region | share | broad (its reason says why) |",
             "|---|---|---|---|---|"]
    for rule in load_rules():
        inside, total = breadth(rule, args.examples)
        share = inside / total if total else 0.0
        lines.append(f"| `{rule.id}` | {total} | {inside} | {100 * share:.1f}% | {'yes' if rule.broad else ''} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
