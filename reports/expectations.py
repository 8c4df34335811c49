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
Matching works on plain dicts: this module knows nothing of torch or Hypothesis.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).with_name("expectations.toml")
_RULE_KEYS = {"id", "impl", "check", "device", "dtype", "when", "reason", "link"}


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

    def matches(self, impl: str, check: str, device: str, dtype: str, facts: dict[str, Any]) -> bool:
        if impl not in self.impl or check not in self.check:
            return False
        if (self.device and device not in self.device) or (self.dtype and dtype not in self.dtype):
            return False
        return all(_holds(facts.get(key), wanted) for key, wanted in self.when.items())


def _holds(actual: Any, wanted: Any) -> bool:
    options = wanted if isinstance(wanted, list) else [wanted]
    if isinstance(actual, (list, tuple)):
        return any(option in actual for option in options)
    return actual in options


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
        if not isinstance(entry.get("when", {}), dict):
            raise ExpectationsError(f"{where}: 'when' must be a table of predicates")
        seen.add(entry["id"])
        rules.append(Rule(id=str(entry["id"]), impl=_names(entry["impl"], where, "impl"),
                          check=_names(entry["check"], where, "check"), reason=str(entry["reason"]),
                          link=str(entry.get("link", "")),
                          device=_names(entry.get("device", []), where, "device"),
                          dtype=_names(entry.get("dtype", []), where, "dtype"),
                          when=dict(entry.get("when", {}))))
    return rules


def match(rules: list[Rule], impl: str, check: str, device: str, dtype: str,
          facts: dict[str, Any]) -> Rule | None:
    """The first rule that declares this discrepancy as known, or None."""
    return next((rule for rule in rules if rule.matches(impl, check, device, dtype, facts)), None)


def stale(rules: list[Rule], matched_ids: set[str], impls_run: set[str], checks_run: set[str]) -> list[Rule]:
    """Rules that matched nothing although the run exercised their implementation and check."""
    return [rule for rule in rules if rule.id not in matched_ids
            and set(rule.impl) & impls_run and set(rule.check) & checks_run]
