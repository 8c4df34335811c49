"""What the catalog and the model-size search add to the gate on the built-in implementations: the gate's wall
time with every test, and without ``test_catalog`` and ``test_model_sizes`` (``-n 2``, the ci profile, a warm
torch.compile cache: the first run warms it).

    python benchmarks/model_size_gate_cost.py > benchmarks/results/model_size_gate_cost_intel_xeon.md
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from convt_conformance.suites.environment import cpu_name  # noqa: E402

BUILT_INS = ("naive", "im2col", "zero-insertion", "torch-cpu-default", "torch-cpu-native", "torch-cpu-channels-last",
             "torch-module", "torch-meta", "torch-fake", "torch-compile", "torch-compile-epilogue",
             "torch-compile-freezing")
WITHOUT = "not test_catalog and not test_model_sizes"


def gate(*args: str) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "-n", "2",
                   "--report-dir", out, *(arg for name in BUILT_INS for arg in ("--impl", name)), *args]
        start = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        summary = re.findall(r"^=*\s*(\d+ (?:passed|failed).*?)\s*=*$", done.stdout, re.M)
        return time.monotonic() - start, (summary[-1] if summary else f"exit {done.returncode}")


def main() -> None:
    print(f"machine: {cpu_name()}, 2 workers, torch {torch.__version__}, Python {platform.python_version()}\n")
    print("| run | wall time | pytest's summary |\n|---|---|---|")
    for label, args in (("every test", ()), (f"`-k '{WITHOUT}'`", ("-k", WITHOUT)), ("every test, again", ())):
        seconds, summary = gate(*args)
        print(f"| {label} | {seconds:.0f} s | {summary} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
