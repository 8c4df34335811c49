"""Harness throughput: examples per second on one core for each oracle on the default problem
distribution, in-process and contained (the implementation in a warm worker process, as plugins run),
the share of time spent outside implementation calls (harness overhead), and campaign throughput from
1 worker to every core.

    python benchmarks/throughput.py [--impl im2col] [--examples 200] [--campaign-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import impls  # noqa: E402
from suites.case import Case  # noqa: E402
from suites.checks import CHECKS, Untrusted, run_on  # noqa: E402
from suites.containment import contained  # noqa: E402
from suites.environment import cpu_name  # noqa: E402


def per_oracle(impl: impls.Implementation, check: str, examples: int) -> tuple[float, float]:
    """(examples per second, share of the time outside the implementation) for one oracle."""
    inside = [0.0]

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return impl.fn(*args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - start

    import dataclasses

    case = Case(dataclasses.replace(impl, fn=timed), "cpu", "float32")
    count = [0]

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(CHECKS[check].draws(case))
    def run(problems):
        count[0] += 1
        for problem in problems:
            try:
                run_on(case, problem, check)
            except Untrusted:
                pass

    start = time.perf_counter()
    run()
    total = time.perf_counter() - start
    return count[0] / total, 1 - inside[0] / total


def campaign(workers: int, seconds: float, impl: str) -> float:
    """Examples per second of a campaign with this many workers."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "suites", "fuzz", "--seconds", str(seconds), "--workers", str(workers),
                        "--impl", impl, "--report-dir", out], cwd=ROOT, capture_output=True, check=False)
        report = json.loads((Path(out) / "report.json").read_text())
    return sum(row["examples"] for row in report["summary"]["table"]) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", default="im2col")
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--campaign-seconds", type=float, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    impl = impls.get(args.impl)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}; implementation {impl.name}, "
          f"float32, one thread")
    boxed = contained(impl, [])
    per_oracle(boxed, "shape", 5)  # start its worker: a run starts it once per implementation and process
    print("| oracle | examples/s in-process (one core) | time outside the implementation | "
          "examples/s contained | contained / in-process |")
    print("|---|---:|---:|---:|---:|")
    for check in ("shape", "exact", "bound", "adjoint", "invalid-accepted", "valid-refused", "inputs-unmodified",
                  "layout", "special-values", "determinism"):
        rate, overhead = per_oracle(impl, check, args.examples)
        boxed_rate, _ = per_oracle(boxed, check, args.examples)
        print(f"| {check} | {rate:.0f} | {overhead:.0%} | {boxed_rate:.0f} | {boxed_rate / rate:.0%} |", flush=True)
    boxed.fn.close()
    print("\n| campaign workers | examples/s |")
    print("|---:|---:|")
    for workers in range(1, (os.cpu_count() or 1) + 1):
        print(f"| {workers} | {campaign(workers, args.campaign_seconds, impl.name):.0f} |", flush=True)


if __name__ == "__main__":
    main()
