"""Time-budgeted fuzz campaigns: every test gets a fair slice of the wall-clock budget, the run ends by
itself on time, and a terminal shows live progress.

A test whose slice is spent stops at its next example (Hypothesis ends it at once); a test that has
found a failure may finish shrinking it during a short grace period, and past that its failing example
is recorded as found, unminimized, so nothing found is lost to the clock.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from convt_conformance.reports import files

SKIP_REASON = "campaign: this test's time slice is spent"
NOT_REACHED = "campaign: the time budget ended before this test"


@dataclass
class Budget:
    deadline: float  # time.time() at which the campaign ends
    tests_left: int  # tests this process has still to start (an estimate under xdist's load balancing)
    grace: float  # how long a test with a failure may keep shrinking past its slice
    test_started: float = 0.0
    slice_seconds: float = 0.0
    failing: Any = None  # (case, problem, check, finding) of the first failure of the current test

    def start_test(self) -> None:
        """Give the starting test its share of the time that is left (dynamic, so overheads and early
        finishers are accounted for)."""
        now = time.time()
        self.test_started, self.failing = now, None
        self.slice_seconds = max(self.deadline - now, 0.0) / max(self.tests_left, 1)
        self.tests_left = max(self.tests_left - 1, 1)

    def slice_end(self) -> float:
        return min(self.test_started + self.slice_seconds, self.deadline)

    def spent(self) -> bool:
        now = time.time()
        if self.failing is None:
            return now >= self.slice_end()
        return now >= self.slice_end() + self.grace

    def over(self) -> bool:
        return time.time() >= self.deadline

    def note_failure(self, *failure: Any) -> None:
        """Remember the current test's first failure, to record it if the clock cuts its shrinking."""
        if self.failing is None:
            self.failing = failure


def budget(deadline: float, budget_seconds: float, tests: int, workers: int) -> Budget:
    """One process's budget: the shared deadline and its share of the tests."""
    return Budget(deadline, tests_left=-(-tests // max(workers, 1)), grace=min(20.0, 0.1 * budget_seconds))


def install_interrupt_guard(interrupted: threading.Event) -> Callable[[], None]:
    """Make one Ctrl-C end a campaign; returns what restores the previous handler.

    Python raises KeyboardInterrupt wherever the main thread happens to be; raised inside a finalizer
    or a generator being closed by the garbage collector, it is printed as "Exception ignored" and
    lost, and a long campaign runs on. The flag set here is seen before the next example, which then
    raises it again from the test itself."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:  # leave an ignored (or a caller's) SIGINT alone
        return lambda: None

    def interrupt(signum, frame) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    return lambda: signal.signal(signal.SIGINT, previous)


def stop_if_spent(budget: Budget | None, interrupted: threading.Event, record_unminimized: Callable) -> None:
    """Called before each example: end the run on a Ctrl-C, end the test when its slice (and any
    grace) is spent."""
    if interrupted.is_set():
        raise KeyboardInterrupt
    if budget is None or not budget.spent():
        return
    if budget.failing is not None:
        record_unminimized(*budget.failing)
        budget.failing = None
    pytest.skip(SKIP_REASON)


class Progress:
    """A live progress line on the terminal: elapsed / budget, examples per second, discrepancies by
    implementation, the most visited bug-prone regions. Silent when stderr is not a terminal."""

    def __init__(self, budget_seconds: float, snapshot, interval: float = 5.0) -> None:
        self.started, self.budget, self.snapshot, self.interval = time.time(), budget_seconds, snapshot, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        if sys.stderr.isatty():
            self.thread.start()

    def close(self) -> None:
        self.stop.set()

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            sys.stderr.write("\r" + self.line() + "\x1b[K")
            sys.stderr.flush()
        sys.stderr.write("\n")

    def line(self) -> str:
        tally = self.snapshot()
        elapsed = time.time() - self.started
        examples = sum(n for *_, n in tally.get("examples", []))
        failed: dict[str, int] = {}
        for impl, _, n in tally.get("failed", []):
            failed[impl] = failed.get(impl, 0) + n
        regions = sorted(tally.get("regions", {}).items(), key=lambda item: -item[1])[:3]
        return (f"fuzz {_clock(elapsed)}/{_clock(self.budget)} | {examples:,} examples "
                f"({examples / max(elapsed, 1e-9):.0f}/s) | discrepancies: "
                f"{', '.join(f'{k} {v}' for k, v in sorted(failed.items())) or 'none'} | "
                + ", ".join(f"{name} {count}" for name, count in regions))


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02}:{seconds % 60:02}"


def read_snapshots(directory: Path) -> dict[str, Any]:
    """The workers' latest tallies, summed (for the progress line)."""
    import json

    total: dict[str, Any] = {"examples": [], "failed": [], "regions": {}}
    for path in directory.glob(files.PROGRESS_GLOB):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        total["examples"] += data.get("examples", [])
        total["failed"] += data.get("failed", [])
        for name, count in data.get("regions", {}).items():
            total["regions"][name] = total["regions"].get(name, 0) + count
    return total
