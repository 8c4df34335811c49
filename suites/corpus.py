"""The corpus: stored problems replayed before any new one is drawn, so a fixed bug stays fixed.

``suites/corpus/`` ships a seed corpus built from real transposed-convolution bugs (each entry names
its source); every run also saves its minimized failures under ``<report dir>/corpus/`` and replays
them next time. Files are JSON and only ever parsed as data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impls import spec

from .problem import Problem

# The value kind each check is defined on; other checks replay the entry's own values.
VALUES_OF_CHECK = {"exact": "int", "bound": "real", "adjoint": "real", "layout": "real", "special-values": "special"}

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


def _entry(path: Path, data: Any, known_checks: set[str]) -> Entry:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    checks = data.get("checks")
    if not isinstance(checks, list) or not checks or not set(checks) <= known_checks:
        raise ValueError(f"'checks' must be a non-empty list of {sorted(known_checks)}")
    dtypes = data.get("dtypes", [])
    if not isinstance(dtypes, list) or not set(dtypes) <= set(spec.DTYPES):
        raise ValueError(f"'dtypes' must be a list of {list(spec.DTYPES)}")
    problem = Problem.from_dict(data.get("problem"))
    if problem.broken_rule is None:
        problem.geometry()  # a valid entry must really be valid
    return Entry(id=str(data.get("id", path.stem)), path=str(path), problem=problem, checks=tuple(checks),
                 dtypes=tuple(dtypes), source=str(data.get("source", data.get("found_by", ""))),
                 note=str(data.get("note", "")))


def load_corpus(directories: list[Path], known_checks: set[str]) -> tuple[list[Entry], list[str]]:
    """Every readable entry under ``directories`` and one line per file that could not be used."""
    entries, problems, seen = [], [], set()
    for directory in directories:
        for path in sorted(Path(directory).glob("*.json")):
            try:
                entry = _entry(path, json.loads(path.read_text(encoding="utf-8")), known_checks)
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
    proves nothing. Valid entries must be valid, and run every value check they name, in every dtype
    they are replayed in; invalid entries must stay invalid there."""
    from .checks import never_runs  # the checks import this module's neighbours, not the reverse

    lines = []
    for entry in entries:
        for dtype in entry.dtypes or spec.ALL_DTYPES:
            for check in entry.checks:
                problem = entry.problem.replace(dtype=dtype, values=VALUES_OF_CHECK.get(check, entry.problem.values))
                if check == "invalid-accepted" or entry.problem.broken_rule:
                    continue
                reason = never_runs(problem, check)
                if reason:
                    lines.append(f"{entry.path}: {check} never runs in {dtype} ({reason})")
    return lines
