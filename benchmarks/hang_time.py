"""How long the gate takes to find, shrink and report a hanging plugin, with the default limits.

    python benchmarks/hang_time.py [--call-timeout 60] [--hang-shrink-seconds 60]

Runs ``pytest suites -k test_shape`` on the planted ``hang-on-large-stride`` (it never returns when a
stride exceeds 2) in one process, as a user's gate would, and prints the wall time, the recorded
finding and whether its shrinking finished. A segfaulting plugin is timed alongside for comparison,
and the corpus replay on the hanging plugin (each stored problem that hangs restarts its worker: the
full per-call limit is paid once, not once per problem).
"""

from __future__ import annotations

import argparse
import json
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

CRASHING = str(ROOT / "tests" / "planted" / "crashing.py")


def gate(impl: str, extra: list[str], selection: str = "test_shape and not test_replay") -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "-n", "0",
                   "--impl-module", CRASHING, "--impl", impl, "--dtype", "float32", "--report-dir", out,
                   "-k", selection, *extra]
        started = time.monotonic()
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        took = time.monotonic() - started
        report = json.loads((Path(out) / "report.json").read_text())
    return took, [d for d in report["discrepancies"] if d["status"] == "unexpected"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--call-timeout", type=float, default=None)
    parser.add_argument("--hang-shrink-seconds", type=float, default=None)
    args = parser.parse_args()
    extra = [f"--{name.replace('_', '-')}={value:g}" for name, value in vars(args).items() if value is not None]
    print(f"machine: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"Python {platform.python_version()}; limits: {' '.join(extra) or 'the defaults'}")
    print("| plugin | tests | gate wall time | finding | minimized problem |")
    print("|---|---|---:|---|---|")
    for impl in ("hang-on-large-stride", "segfault-on-groups"):
        took, found = gate(impl, extra)
        for record in found or [{"check": "none", "summary": "nothing found", "descriptor": ""}]:
            print(f"| `{impl}` | shape | {took:.0f} s | {record['check']}: {record['summary'][:90]} | "
                  f"`{record['descriptor']}` |")
    # The corpus replay: every stored problem with a stride above 2 hangs, each in a restarted worker.
    took, found = gate("hang-on-large-stride", extra, "test_replay")
    hangs = sum(record["check"] == "timeout" for record in found)
    print(f"| `hang-on-large-stride` | corpus replay | {took:.0f} s | {hangs} corpus problems hung | |")


if __name__ == "__main__":
    main()
