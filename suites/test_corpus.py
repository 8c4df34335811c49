"""Replay the corpus first: historical bugs and earlier minimized failures, on every selected
implementation and dtype, through the checks each entry names."""

from __future__ import annotations

import pytest

from .all_checks import CHECKS, Untrusted, run_on
from .case import Case
from .corpus import Entry, replayable
from .run import Run
from .verdicts import Discrepancy, conclude


def test_replay(case: Case, corpus_entry: Entry, conformance_run: Run) -> None:
    failures, ran = [], 0
    for check in corpus_entry.checks:
        if replayable(case, corpus_entry, check) is not None:
            continue
        try:
            evaluation, finding = run_on(case, CHECKS[check].problem(corpus_entry.problem, case.dtype_name), check)
        except Untrusted:
            continue
        ran += 1
        try:
            conclude(conformance_run, case, evaluation.problem, check, finding)
        except Discrepancy as discrepancy:
            failures.append(discrepancy)
    if failures:
        entry = f"corpus entry {corpus_entry.id} ({corpus_entry.source}):\n"
        raise Discrepancy(entry + "\n".join(map(str, failures)), entry + "\n".join(f.brief for f in failures))
    if not ran:
        pytest.skip(f"no check of {corpus_entry.id} applies to {case.id}")
