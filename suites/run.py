"""The run: what one pytest process knows about the conformance run it takes part in.

Built once per process by the plugin (``suites/plugin/setup.py``), kept in ``config.stash`` and passed
explicitly to whatever needs it; nothing about a run lives in module globals, so several runs can
share one interpreter (the project's own tests run the gate in-process).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as Settings

from convt_conformance.impls import Implementation
from convt_conformance.reports import expectations, files
from convt_conformance.reports.records import RecordWriter, Tally, write_json

from .campaign import Budget
from .corpus import Entry
from .limits import DEFAULT_HANG_SHRINK_SECONDS, GATE_CAPS, Caps


@dataclass
class HangHunt:
    """A test shrinking a hang: since when, and its latest (smallest) failing example."""

    started: float
    latest: tuple


@dataclass(repr=False)  # pytest prints a failing test's arguments: the rules would fill screens
class Run:
    """Counts, rules, the implementations and corpus of this run, where its records go, its campaign
    clock. The controller of an xdist run and each of its workers have one each; the tallies merge."""

    rules: list[expectations.Rule] = field(default_factory=list)
    # (implementation, device, dtype, check) -> the rules naming them (see verdicts.count_rule_regions)
    rules_naming: dict[tuple[str, str, str, str], list[expectations.Rule]] = field(default_factory=dict)
    implementations: list[Implementation] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    writer: RecordWriter | None = None
    report_dir: Path | None = None
    corpus: list[Entry] = field(default_factory=list)
    worker: str = "main"  # the xdist worker id, or "main"
    plugin_modules: tuple[str, ...] = ()  # as given on the command line (repro lines repeat them)
    environment: dict[str, Any] = field(default_factory=dict)
    budget: Budget | None = None  # a fuzz campaign's clock; None for the gate
    deadline: float | None = None  # the campaign's shared wall-clock end (time.time())
    interrupted: threading.Event = field(default_factory=threading.Event)
    notices: list[str] = field(default_factory=list)  # one line each: unreadable corpus or report files, gaps
    settings: Settings | None = None  # the Hypothesis settings of the gate's tests (--convt-profile and options)
    known_recorded: set[tuple[str, str, str]] = field(default_factory=set)
    # (test node id, kind) -> (case, problem, check, finding) of its first failing example, until the failure
    # is recorded; one still here when the test fails did not fail again on replay (a nondeterministic finding)
    unrecorded: dict[tuple[str, str], tuple] = field(default_factory=dict)
    progress_written: float = 0.0
    hang_shrink_seconds: float = DEFAULT_HANG_SHRINK_SECONDS
    caps: Caps = GATE_CAPS  # how large the model-size search draws (the scale profile's are larger)
    hangs: dict[str, HangHunt] = field(default_factory=dict)  # test node id -> the hang it is shrinking
    # in-process implementation name -> its contained twin, for the cases a rule declares to crash
    crash_contained: dict[str, Implementation] = field(default_factory=dict)
    unstartable: dict[str, str] = field(default_factory=dict)  # implementation -> why no worker could start
    report: dict[str, Any] | None = None  # the merged report, once the session has written it

    @property
    def corpus_dir(self) -> Path | None:
        """Where minimized failures are saved (and replayed from on the next run)."""
        return None if self.report_dir is None else self.report_dir / "corpus"

    def __repr__(self) -> str:
        return f"Run({self.worker}: {len(self.implementations)} implementations, {len(self.rules)} rules)"

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # Hypothesis' failure printout
        printer.text(repr(self))

    def write_progress(self, every: float = 2.0) -> None:
        """A campaign's live counts, for the progress line (at most every ``every`` seconds)."""
        if self.budget is None or self.report_dir is None or time.time() - self.progress_written < every:
            return
        self.progress_written = time.time()
        write_json(self.report_dir / files.progress_file(self.worker), self.tally.counts())


RUN_KEY = pytest.StashKey[Run]()


def run_of(config: pytest.Config) -> Run:
    return config.stash[RUN_KEY]
