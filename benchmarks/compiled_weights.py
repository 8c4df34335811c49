"""What ``fixed_weights`` saves a runtime that compiles the weights into its program: the gate's wall time on
the planted ``compiled-weights-runtime`` (each new shape and weight costs a simulated compilation), declared
with ``fixed_weights=2`` and without it, on the checks that call it with values.

    python benchmarks/compiled_weights.py [--compile-seconds 0.25]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from convt_conformance.suites.environment import cpu_name  # noqa: E402

PLUGIN = str(ROOT / "tests" / "planted" / "compiled_weights.py")
SELECTION = "test_exact or test_bound or test_adjoint or test_special_values or test_determinism"


def gate(impl: str) -> tuple[float, int, int]:
    """Wall time, examples checked and unexpected discrepancies of the gate on ``impl``."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "-n", "0",
                   "--impl-module", PLUGIN, "--impl", impl, "--report-dir", out, "-k", SELECTION]
        started = time.monotonic()
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        took = time.monotonic() - started
        report = json.loads((Path(out) / "report.json").read_text())
    examples = sum(row["examples"] for row in report["summary"]["table"])
    return took, examples, sum(d["status"] == "unexpected" for d in report["discrepancies"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compile-seconds", type=float, default=0.25)
    args = parser.parse_args()
    os.environ["CONVT_SIMULATED_COMPILE_SECONDS"] = str(args.compile_seconds)
    print(f"machine: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python "
          f"{platform.python_version()}; a simulated compilation of {args.compile_seconds:g} s per new program; "
          f"the ci profile; tests: {SELECTION}")
    print("| runtime | gate wall time | examples | unexpected |\n|---|---:|---:|---:|")
    for impl in ("compiled-weights-runtime", "compiled-weights-runtime-undeclared"):
        took, examples, unexpected = gate(impl)
        print(f"| `{impl}` | {took:.0f} s | {examples} | {unexpected} |", flush=True)


if __name__ == "__main__":
    main()
