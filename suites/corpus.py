"""The corpus: stored problems replayed before any new one is drawn, so a fixed bug stays fixed.

``suites/corpus/`` ships a seed corpus built from real transposed-convolution bugs (each entry names
its source); every run also saves its minimized failures under ``<report dir>/corpus/`` and replays
them next time. Files are JSON and only ever parsed as data.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convt_conformance import spec

from .all_checks import CHECKS
from .case import Case
from .checks import never_runs
from .problem import Problem

SEED_CORPUS = Path(__file__).with_name("corpus")


@dataclass(frozen=True)
class Entry:
    id: str
    path: str
    problem: Problem
    checks: tuple[str, ...]
    dtypes: tuple[str, ...] = ()  # empty: replay in every dtype the implementation declares
    source: str = ""
    note: str = ""


def _entry(path: Path, data: Any) -> Entry:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    checks = data.get("checks")
    if not isinstance(checks, list) or not checks or not set(checks) <= set(CHECKS):
        raise ValueError(f"'checks' must be a non-empty list of {sorted(CHECKS)}")
    dtypes = data.get("dtypes", [])
    if not isinstance(dtypes, list) or not set(dtypes) <= set(spec.DTYPES):
        raise ValueError(f"'dtypes' must be a list of {list(spec.DTYPES)}")
    problem = Problem.from_dict(data.get("problem"))
    if problem.broken_rule is None:
        problem.geometry()  # a valid entry must really be valid
    return Entry(id=str(data.get("id", path.stem)), path=str(path), problem=problem, checks=tuple(checks),
                 dtypes=tuple(dtypes), source=str(data.get("source", data.get("found_by", ""))),
                 note=str(data.get("note", "")))


def load_corpus(directories: list[Path]) -> tuple[list[Entry], list[str]]:
    """Every readable entry under ``directories`` and one line per file that could not be used."""
    entries, problems, seen = [], [], set()
    for directory in directories:
        for path in sorted(Path(directory).glob("*.json")):
            try:
                entry = _entry(path, json.loads(path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                problems.append(f"{path}: not a corpus entry ({reason}); skipped")
                continue
            if entry.id not in seen:
                seen.add(entry.id)
                entries.append(entry)
    return entries, problems


def gaps(entries: list[Entry]) -> list[str]:
    """One line per (entry, check, dtype) that would never run: a stored bug that is silently skipped
    proves nothing. Valid entries must run every value check they name, in every dtype they are
    replayed in."""
    lines = []
    for entry in entries:
        if entry.problem.broken_rule:
            continue
        for dtype in entry.dtypes or spec.ALL_DTYPES:
            for name in entry.checks:
                reason = never_runs(CHECKS[name].problem(entry.problem, dtype), name)
                if reason:
                    lines.append(f"{entry.path}: {name} never runs in {dtype} ({reason})")
    return lines


def replayable(case: Case, entry: Entry, check: str) -> str | None:
    """Why ``entry`` cannot be replayed through ``check`` on ``case``, or None when it can."""
    problem = entry.problem.replace(dtype=case.dtype_name)
    if problem.dims not in case.impl.dims:
        return f"{case.impl.name} does not serve {problem.dims}d"
    if entry.dtypes and case.dtype_name not in entry.dtypes:
        return f"stored for {', '.join(entry.dtypes)} only"
    reason = CHECKS[check].skip_reason(case)
    if reason:
        return reason
    invalid = bool(problem.broken_rule) or CHECKS[check].expects_invalid
    unmet = [] if invalid else case.impl.outside_domain(problem)
    if unmet and check != "outside-domain":
        return f"outside {case.impl.name}'s declared domain ({', '.join(unmet)})"
    if invalid:
        try:
            problem.geometry()
            return "valid in this dtype"
        except ValueError:
            return None
    return None


def save_to_corpus(directory: str | Path, case: Case, problem: Problem, check: str) -> None:
    """Keep a minimized failing problem so later runs replay it first (and a fixed bug stays fixed)."""
    entry = {"problem": problem.to_dict(), "checks": [check], "found_by": case.id,
             "note": f"found by {case.id}: {check}"}
    text = json.dumps(entry, indent=1, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{check}-{case.impl.name}-{digest}.json")
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
