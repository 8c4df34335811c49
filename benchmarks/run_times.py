"""Wall-clock time of the two Quickstart runs in this checkout: the conformance gate on the built-in
implementations that need no optional package (what the first Quickstart line checks on a fresh
machine), and the project's own tests (the second line), both with ``-n auto``; and the gate with every
installed extra (the third-party frameworks) beside the built-ins.

    python benchmarks/run_times.py > benchmarks/results/run_times.md

Installing packages is not timed. Each run writes its reports to a temporary folder and starts with an
empty torch.compile (Inductor) cache.
"""

from __future__ import annotations

import argparse
import os
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

from convt_conformance import impls  # noqa: E402
from convt_conformance.suites.environment import cpu_name  # noqa: E402


def timed(arguments: list[str], cache: str) -> tuple[float, str, int]:
    """Seconds, pytest's last line (and the tests that failed), and the exit status of
    ``python -m pytest ARGUMENTS``, with an empty Inductor cache in ``cache`` (as on a fresh machine)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-rf", *arguments], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache})
    seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    failed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
    summary = lines[-1].strip("= ") if lines else "(no summary)"
    return seconds, summary + (f" (failed: {', '.join(failed)})" if failed else ""), done.returncode


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    no_extras = [impl.name for impl in impls.available() if impl.builtin and not impl.extra.get("third_party")]
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"Python {platform.python_version()}\n")
    print("| run | command | wall time | pytest's summary | exit status |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as out:
        everything = ["suites", "-n", "auto", "-q", "-p", "no:cacheprovider", "--report-dir", out]
        gate = everything + [arg for name in no_extras for arg in ("--impl", name)]
        extras = sorted(impl.name for impl in impls.available() if impl.extra.get("third_party"))
        for name, arguments in (("gate (built-ins without extras)", gate),
                                ("project's tests", ["tests", "-n", "auto", "-q", "-p", "no:cacheprovider"]),
                                (f"gate with the extras ({', '.join(extras) or 'none installed'})", everything)):
            seconds, summary, status = timed(arguments, tempfile.mkdtemp(dir=out))
            shown = " ".join(arguments[:3])
            print(f"| {name} | `pytest {shown}` | {seconds:.0f} s | {summary} | {status} |", flush=True)


if __name__ == "__main__":
    main()
