"""Crash-safe discrepancy records and their merge into ``report.json``.

Each process appends records as JSON lines to its own file (``records-<worker>.jsonl``), flushed and
fsynced the moment a discrepancy is found: a run killed with SIGKILL leaves every earlier record
readable. At the end of a run (or afterwards, by ``convt report merge DIR``) the files merge into
``report.json``. Reading never executes anything: records are JSON, never pickles.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import causes
from .files import PROGRESS_GLOB, RECORD_GLOB, REPORT_JSON, TALLY_GLOB, records_file

REQUIRED_KEYS = ("impl", "device", "dtype", "check", "problem", "repro")


class ReportError(ValueError):
    """A report or record file that cannot be read; the message names the file and the fault."""


class RecordWriter:
    """Appends one JSON object per line to ``directory/records-<worker>.jsonl``, durably."""

    def __init__(self, directory: str | Path, worker: str) -> None:
        self.path = Path(directory) / records_file(worker)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, default=str, allow_nan=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True, default=str), encoding="utf-8")
    os.replace(temporary, path)


def read_records(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every readable record of a JSON-lines file, and one problem line per unreadable one (a torn
    last line from a killed run, a malformed or incomplete record)."""
    path = Path(path)
    records, problems = [], []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return [], [f"{path}: cannot be read ({exc.strerror})"]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: not a JSON record ({exc.msg}); skipped")
            continue
        missing = [key for key in REQUIRED_KEYS if not isinstance(record, dict) or key not in record]
        if missing:
            problems.append(f"{path}:{number}: record lacks {', '.join(missing)}; skipped")
            continue
        records.append(record)
    return records, problems


def read_report(path: str | Path) -> dict[str, Any]:
    """A ``report.json``, checked for the shape this project writes; one clear line if it is not."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot be read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not a JSON report ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("discrepancies"), list):
        raise ReportError(f"{path}: not a convt-conformance report (no 'discrepancies' list)")
    for number, record in enumerate(data["discrepancies"], 1):
        missing = [key for key in REQUIRED_KEYS if not isinstance(record, dict) or key not in record]
        if missing:
            raise ReportError(f"{path}: discrepancy {number} lacks {', '.join(missing)}")
    data.setdefault("summary", {})
    if "causes" not in data:  # written before reports carried their causes
        data["causes"] = causes.group(data["discrepancies"])
    count = len(data["discrepancies"])
    if not isinstance(data["causes"], list) or any(
            not isinstance(c, dict) or not isinstance(c.get("example"), int) or not 0 <= c["example"] < count
            for c in data["causes"]):
        raise ReportError(f"{path}: its 'causes' do not point at its discrepancies")
    return data


@dataclass
class Tally:
    """A run's counts: examples, failures and known discrepancies per (implementation, check), regions
    visited, rules matched. Each process keeps one; they merge into the report's summary."""

    examples: dict[tuple[str, str], int] = field(default_factory=dict)
    failed: dict[tuple[str, str], int] = field(default_factory=dict)
    known: dict[tuple[str, str], int] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)
    evaluated: dict[str, int] = field(default_factory=dict)  # "check: region" -> examples checked there
    rules_matched: dict[str, int] = field(default_factory=dict)
    # per rule: examples of the implementations, dtypes and checks it names, and those in its region
    rule_drawn: dict[str, int] = field(default_factory=dict)
    rule_region: dict[str, int] = field(default_factory=dict)
    # (implementation, requirement of its declared domain, "refused" or "accepted") -> problems outside it
    domain: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def count(self, name: str, key: Any, n: int = 1) -> None:
        counter = getattr(self, name)
        counter[key] = counter.get(key, 0) + n

    def checks_run(self) -> set[str]:
        return {check for _, check in self.examples}

    def counts(self) -> dict[str, Any]:
        """The raw counts as JSON (what one process sends or writes for a later merge)."""
        pairs = lambda counter: [[*key, n] for key, n in counter.items()]  # noqa: E731
        return {"examples": pairs(self.examples), "failed": pairs(self.failed), "known": pairs(self.known),
                "domain": pairs(self.domain),
                "regions": dict(self.regions), "evaluated": dict(self.evaluated),
                "rules_matched": dict(self.rules_matched), "rule_drawn": dict(self.rule_drawn),
                "rule_region": dict(self.rule_region)}

    def add(self, counts: dict[str, Any]) -> None:
        """Add another process's :meth:`counts`."""
        for name in ("examples", "failed", "known", "domain"):
            counter = getattr(self, name)
            for *key, n in counts.get(name, []):
                counter[tuple(key)] = counter.get(tuple(key), 0) + n
        for name in ("regions", "evaluated", "rules_matched", "rule_drawn", "rule_region"):
            counter = getattr(self, name)
            for key, n in counts.get(name, {}).items():
                counter[key] = counter.get(key, 0) + n

    def summary(self) -> dict[str, Any]:
        """The report's summary: a row per (implementation, check) with its verdict, and the counts."""
        keys = sorted(set(self.examples) | set(self.failed) | set(self.known))
        rows = [{"impl": impl, "check": check, "examples": self.examples.get((impl, check), 0),
                 "failed": self.failed.get((impl, check), 0), "known": self.known.get((impl, check), 0)}
                for impl, check in keys]
        for row in rows:
            row["passed"] = max(row["examples"] - row["failed"] - row["known"], 0)
            row["verdict"] = "fail" if row["failed"] else ("known" if row["known"] else "pass")
        domain = {}
        for (impl, requirement, outcome), n in sorted(self.domain.items()):
            row = domain.setdefault((impl, requirement), {"impl": impl, "requirement": requirement, "refused": 0,
                                                          "accepted": 0})
            row[outcome] += n
        return {"table": rows, "domain": list(domain.values()), "implementations": sorted({r["impl"] for r in rows}),
                "checks": sorted({r["check"] for r in rows}), "regions": self.regions,
                "evaluated": self.evaluated, "rules_matched": self.rules_matched, "breadth": self.breadth()}

    def breadth(self) -> dict[str, dict[str, float]]:
        """Per rule: how many examples of what it names were checked, and the share in its region (the
        share of problems it could excuse)."""
        return {rule: {"examples": n, "in_region": self.rule_region.get(rule, 0),
                       "share": self.rule_region.get(rule, 0) / n}
                for rule, n in sorted(self.rule_drawn.items()) if n}


def merge(directory: str | Path, extra_summary: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Merge every worker's records and tallies under ``directory`` into ``report.json``; returns the
    report and the problems met (malformed lines or files are skipped, never fatal)."""
    directory = Path(directory)
    records, problems = [], []
    for path in sorted(directory.glob(RECORD_GLOB)):
        found, trouble = read_records(path)
        records += found
        problems += trouble
    tally = Tally()
    # A run killed before its end left no tally, only the workers' live progress counts: use those.
    tallies = sorted(directory.glob(TALLY_GLOB)) or sorted(directory.glob(PROGRESS_GLOB))
    for path in tallies:
        try:
            tally.add(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, TypeError, ValueError) as exc:
            problems.append(f"{path}: unreadable tally ({exc}); skipped")
    merged_summary = tally.summary()
    merged_summary.update(extra_summary or {})
    merged_summary["verdict"] = _verdict(records)
    report = with_causes(_deduplicated(records), merged_summary)
    write_json(directory / REPORT_JSON, report)
    return report, problems


def with_causes(discrepancies: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    """A report: its discrepancies, the causes they group into (what every document renders), the summary."""
    return {"discrepancies": discrepancies, "causes": causes.group(discrepancies), "summary": summary}


def _verdict(records: Iterable[dict[str, Any]]) -> str:
    statuses = [record.get("status", "unexpected") for record in records]
    return "fail" if "unexpected" in statuses else "pass"


def _deduplicated(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (implementation, device, dtype, check, status, problem)."""
    seen, unique = set(), []
    for record in records:
        key = json.dumps([record.get(k) for k in ("impl", "device", "dtype", "check", "status", "problem")],
                         sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append(record)
    return unique


def merge_reports(paths: list[str | Path], directory: str | Path) -> dict[str, Any]:
    """Combine the report.json of several machines (shards, a CI matrix) into one report."""
    discrepancies, tally, environments = [], Tally(), []
    for path in paths:
        report = read_report(path)
        discrepancies += report["discrepancies"]
        for row in report["summary"].get("table", []):
            for name in ("examples", "failed", "known"):
                tally.count(name, (row["impl"], row["check"]), row.get(name, 0))
        for name in ("regions", "evaluated", "rules_matched", "rule_drawn", "rule_region"):
            for key, n in report["summary"].get(name, {}).items():
                tally.count(name, key, n)
        environments.append(report["summary"].get("environment"))
    merged_summary = tally.summary()
    merged_summary.update(environment=environments[0] if environments else None, sources=[str(p) for p in paths],
                          verdict=_verdict(discrepancies))
    report = with_causes(_deduplicated(discrepancies), merged_summary)
    write_json(Path(directory) / REPORT_JSON, report)
    return report
