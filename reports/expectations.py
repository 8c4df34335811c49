"""Known discrepancies: rules keyed on the implementation, the check and predicates over the problem.

A rule file is TOML::

    [[expected]]
    id = "zero-insertion-spreads-non-finite"
    impl = "zero-insertion"            # one name or a list
    check = "special-values"           # one name or a list
    when = { nonfinite_in = "weight" } # optional predicates over the problem and its facets
    reason = "..."
    link = "https://..."

A predicate ``key = value`` holds when the discrepancy's facet or problem field ``key`` equals
``value`` (or contains it, for list-valued facets); ``key = [a, b]`` holds when it is one of them.
``machine = { float16_on_onednn = true }`` holds the same predicates over the machine's facts (which
kernels its framework picks on this CPU): a rule whose machine predicates fail is not in force there, so
it neither matches, nor is stale, nor makes its implementation run contained.
Matching works on plain dicts: this module knows nothing of torch or Hypothesis.
"""

from __future__ import annotations

import operator
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).with_name("expectations.toml")
_RULE_KEYS = {"id", "impl", "check", "device", "dtype", "when", "machine", "reason", "link"}


class ExpectationsError(ValueError):
    """A malformed expectations file; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Rule:
    id: str
    impl: tuple[str, ...]
    check: tuple[str, ...]
    reason: str
    link: str = ""
    device: tuple[str, ...] = ()
    dtype: tuple[str, ...] = ()
    when: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)  # predicates over the machine's facts

    def holds_on(self, machine: dict[str, Any]) -> bool:
        """Whether the rule is in force on a machine with these facts."""
        return all(_holds(machine.get(key), wanted) for key, wanted in self.machine.items())

    def matches(self, impl: str, check: str, device: str, dtype: str, facts: dict[str, Any]) -> bool:
        return self.covers(impl, check, device, dtype) and all(
            _holds(facts.get(key), wanted) for key, wanted in self.when.items())

    def covers(self, impl: str, check: str, device: str, dtype: str) -> bool:
        """Whether the rule names this implementation, check, device and dtype (its ``when`` aside)."""
        return (impl in self.impl and check in self.check and (not self.device or device in self.device)
                and (not self.dtype or dtype in self.dtype))


_COMPARISONS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
                "==": operator.eq}


def comparison(wanted: Any) -> tuple[Any, float] | None:
    """``(operator, number)`` for a predicate written as a comparison (``"> 0"``, ``">=2"``), else None."""
    if not isinstance(wanted, str):
        return None
    text = wanted.strip()
    for symbol, compare in _COMPARISONS.items():
        if text.startswith(symbol):
            try:
                return compare, float(text[len(symbol):])
            except ValueError:
                return None
    return None


def _holds_one(actual: Any, option: Any) -> bool:
    compared = comparison(option)
    if compared is None:
        return actual == option
    compare, number = compared
    return isinstance(actual, (int, float)) and not isinstance(actual, bool) and compare(actual, number)


def _holds(actual: Any, wanted: Any) -> bool:
    """A list of options holds when any does; a per-axis fact (a list) when any of its values does."""
    options = wanted if isinstance(wanted, list) else [wanted]
    values = actual if isinstance(actual, (list, tuple)) else [actual]
    return any(_holds_one(value, option) for value in values for option in options)


def _names(value: Any, where: str, key: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ExpectationsError(f"{where}: {key!r} must be a string or a list of strings")
    return tuple(values)


def load_rules(path: str | Path = DEFAULT_PATH) -> list[Rule]:
    """Read a rule file; a missing file means no rules, a malformed one raises one clear line."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ExpectationsError(f"{path}: not valid TOML ({exc})") from None
    entries = data.get("expected", [])
    if not isinstance(entries, list):
        raise ExpectationsError(f"{path}: 'expected' must be an array of tables ([[expected]])")
    rules, seen = [], set()
    for number, entry in enumerate(entries, 1):
        where = f"{path}: rule {number}"
        if not isinstance(entry, dict):
            raise ExpectationsError(f"{where}: must be a table")
        unknown = set(entry) - _RULE_KEYS
        missing = {"id", "impl", "check", "reason"} - set(entry)
        if unknown or missing:
            raise ExpectationsError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        if entry["id"] in seen:
            raise ExpectationsError(f"{where}: duplicate id {entry['id']!r}")
        for table in ("when", "machine"):
            if not isinstance(entry.get(table, {}), dict):
                raise ExpectationsError(f"{where}: {table!r} must be a table of predicates")
        seen.add(entry["id"])
        rules.append(Rule(id=str(entry["id"]), impl=_names(entry["impl"], where, "impl"),
                          check=_names(entry["check"], where, "check"), reason=str(entry["reason"]),
                          link=str(entry.get("link", "")),
                          device=_names(entry.get("device", []), where, "device"),
                          dtype=_names(entry.get("dtype", []), where, "dtype"),
                          when=dict(entry.get("when", {})), machine=dict(entry.get("machine", {}))))
    return rules


def load_all(paths: list[str | Path], shipped: bool = True) -> list[Rule]:
    """The shipped rules (unless ``shipped`` is False) followed by each file's, in order: a user's file
    adds to the shipped rules. An id defined twice is an error naming both files. Every rule is returned,
    in force on this machine or not (see :func:`in_force`)."""
    rules, where = [], {}
    for path in ([DEFAULT_PATH] if shipped else []) + [Path(p) for p in paths]:
        for rule in load_rules(path):
            if rule.id in where:
                raise ExpectationsError(f"{path}: rule id {rule.id!r} is already defined in {where[rule.id]}")
            where[rule.id] = path
            rules.append(rule)
    return rules


def in_force(rules: list[Rule], machine: dict[str, Any]) -> list[Rule]:
    """The rules whose machine predicates hold on a machine with these facts."""
    return [rule for rule in rules if rule.holds_on(machine)]


def match(rules: list[Rule], impl: str, check: str, device: str, dtype: str,
          facts: dict[str, Any]) -> Rule | None:
    """The first rule that declares this discrepancy as known, or None."""
    return next((rule for rule in rules if rule.matches(impl, check, device, dtype, facts)), None)


def stale(rules: list[Rule], matched_ids: set[str], impls_run: set[str], checks_run: set[str]) -> list[Rule]:
    """Rules that matched nothing although the run exercised their implementation and check."""
    return [rule for rule in rules if rule.id not in matched_ids
            and set(rule.impl) & impls_run and set(rule.check) & checks_run]
