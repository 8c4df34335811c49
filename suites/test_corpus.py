"""Replay the corpus first: historical bugs and earlier minimized failures, on every selected
implementation and dtype, through the checks each entry names."""

from __future__ import annotations

import pytest

from .checks import Untrusted, run_on
from .corpus import VALUES_OF_CHECK, Entry
from .harness import Case, Discrepancy, conclude


def replayable(case: Case, entry: Entry, check: str) -> tuple[bool, str]:
    problem = entry.problem.replace(dtype=case.dtype_name)
    if problem.dims not in case.impl.dims:
        return False, f"{case.impl.name} does not serve {problem.dims}d"
    if check == "determinism" and not case.impl.is_deterministic(case.device):
        return False, "not declared deterministic"
    if check == "invalid-accepted":
        try:
            problem.geometry()
            return False, "valid in this dtype"
        except ValueError:
            return True, ""
    return True, ""


def test_replay(case: Case, corpus_entry: Entry) -> None:
    failures, ran = [], 0
    for check in corpus_entry.checks:
        usable, _ = replayable(case, corpus_entry, check)
        if not usable:
            continue
        problem = corpus_entry.problem.replace(dtype=case.dtype_name,
                                               values=VALUES_OF_CHECK.get(check, corpus_entry.problem.values))
        try:
            problem, finding = run_on(case, problem, check)
        except Untrusted:
            continue
        ran += 1
        try:
            conclude(case, problem, check, finding)
        except Discrepancy as discrepancy:
            failures.append(str(discrepancy))
    if failures:
        raise Discrepancy(f"corpus entry {corpus_entry.id} ({corpus_entry.source}):\n" + "\n".join(failures))
    if not ran:
        pytest.skip(f"no check of {corpus_entry.id} applies to {case.id}")
