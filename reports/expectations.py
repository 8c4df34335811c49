"""Known discrepancies: rules keyed on the implementation, the check and predicates over the problem.

A rule file is TOML::

    [[expected]]
    id = "zero-insertion-spreads-non-finite"
    impl = "zero-insertion"            # one name or a list
    check = "special-values"           # one name or a list
    when = { nonfinite_in = "weight" } # optional predicates over the problem and its facets
    where = "padding > dilation * (kernel_size - 1)"  # optional: relations between fields, per axis
    finding = { got = "nan", expected = "inf" }  # the bug's fingerprint: what is wrong about the result
    reason = "..."
    link = "https://..."

A rule says where a bug shows (its *region*: ``when`` and ``where``) and what the bug does there (its
*fingerprint*: ``finding``); a discrepancy in the region whose result is wrong in another way is a new
bug, reported as unexpected.

``when``: a predicate ``key = value`` holds when the problem's field or facet ``key`` equals ``value`` (or
contains it, for list-valued facets); ``key = [a, b]`` holds when it is one of them; ``"> 0"`` compares.
``where``: expressions over the problem's facts (``+ - * //``, comparisons, ``and``/``or``/``not``),
evaluated axis by axis, every per-axis fact taken at the same axis; one holds when it holds on some axis.
``finding``: predicates over the finding's facets (:data:`FINDING_FACETS`). A list-valued facet (the
classes of the wrong values, the wrong gradients) holds only when *every* value is allowed: a fingerprint
explains everything that is wrong. A facet the finding lacks fails. ``ratio = "<= 20"`` caps the error in
units of the allowance.
``machine = { float16_on_onednn = true }`` holds the same predicates over the machine's facts (which
kernels its framework picks on this CPU): a rule whose machine predicates fail is not in force there, so
it neither matches, nor is stale, nor makes its implementation run contained. ``seen_on``: the machine
facts where the bug was reproduced; a rule that matched nothing elsewhere is "not reproduced on this
machine", not "fixed". ``broad``: why a rule may excuse more than :data:`BREADTH_LIMIT` of the problems
its implementations are checked on.
Matching works on plain dicts: this module knows nothing of torch or Hypothesis.
"""

from __future__ import annotations

import ast
import functools
import operator
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).with_name("expectations.toml")
_RULE_KEYS = {"id", "impl", "check", "device", "dtype", "when", "where", "finding", "machine", "seen_on", "broad",
              "reason", "link"}
# What a finding's fingerprint may name (suites/oracles.py computes them):
FINDING_FACETS = {
    "got": "classes of the wrong values: nan, inf, zero, finite (non-zero)",
    "expected": "classes of the definition's values there",
    "ratio": "the worst error in units of its allowance (value checks)",
    "gradients": "which gradients are wrong or differ: input, weight, bias (d/d... for double backward)",
    "exit": "how a worker ended: SIGSEGV, SIGABRT, status 0, ...",
    "result": "what an invalid problem gave: empty, values",
}
BREADTH_LIMIT = 0.05  # the share of drawn problems a rule without a ``broad`` reason may excuse


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
    where: tuple[str, ...] = ()  # per-axis relations between the problem's facts
    finding: dict[str, Any] = field(default_factory=dict)  # the fingerprint: predicates over the finding's facets
    machine: dict[str, Any] = field(default_factory=dict)  # predicates over the machine's facts
    seen_on: dict[str, Any] = field(default_factory=dict)  # the machine facts where the bug was reproduced
    broad: str = ""
    inherited: dict[str, str] = field(default_factory=dict)  # implementation -> the host it inherits this from

    def holds_on(self, machine: dict[str, Any]) -> bool:
        """Whether the rule is in force on a machine with these facts."""
        return all(_holds(machine.get(key), wanted) for key, wanted in self.machine.items())

    def in_region(self, facts: dict[str, Any]) -> bool:
        """Whether a problem with these facts lies where the bug shows (``when`` and ``where``)."""
        return all(_holds(facts.get(key), wanted) for key, wanted in self.when.items()) and all(
            relation_holds(expression, facts) for expression in self.where)

    def explains(self, facets: dict[str, Any]) -> bool:
        """Whether a finding with these facets is what the bug does (its fingerprint)."""
        return all(_fingerprint_holds(facets.get(key), wanted) for key, wanted in self.finding.items())

    def matches(self, impl: str, check: str, device: str, dtype: str, facts: dict[str, Any],
                facets: dict[str, Any] | None = None) -> bool:
        return self.covers(impl, check, device, dtype) and self.in_region(facts) and self.explains(facets or {})

    def unreproduced_status(self, machine: dict[str, Any]) -> str:
        """What a rule that matched nothing means here: "fixed" where the machine is one the bug was seen
        on (or the bug depends on no machine fact), else "not reproduced on this machine"."""
        depends = self.machine or self.seen_on
        if not depends or (self.seen_on and all(_holds(machine.get(k), v) for k, v in self.seen_on.items())):
            return "fixed"
        return "not reproduced on this machine"

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


def _fingerprint_holds(actual: Any, wanted: Any) -> bool:
    """Every one of a list-valued facet's values is allowed; a missing facet never holds."""
    if actual is None:
        return False
    if isinstance(actual, (list, tuple)):
        options = wanted if isinstance(wanted, list) else [wanted]
        return bool(actual) and all(any(_holds_one(value, option) for option in options) for value in actual)
    return _holds(actual, wanted)


_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
               ast.Mod: operator.mod}
_RELATIONS = {ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Lt: operator.lt, ast.LtE: operator.le,
              ast.Eq: operator.eq, ast.NotEq: operator.ne}


@functools.lru_cache(maxsize=256)
def parse_relation(expression: str) -> ast.Expression:
    """A ``where`` expression, checked to hold only names, numbers, arithmetic, comparisons and logic."""
    tree = ast.parse(expression, mode="eval")
    allowed = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp, ast.USub, ast.Not,
               ast.BoolOp, ast.And, ast.Or, ast.Compare, *_ARITHMETIC, *_RELATIONS)
    for node in ast.walk(tree):
        if not isinstance(node, allowed) or (isinstance(node, ast.Constant)
                                             and not isinstance(node.value, (int, float))):
            raise ValueError(f"{type(node).__name__} is not allowed (names, numbers, + - * // %, comparisons, "
                             f"and/or/not)")
    return tree


def _evaluate(node: ast.AST, value_of: Any) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, value_of)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return value_of(node.id)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, value_of)
        return (not operand) if isinstance(node.op, ast.Not) else -operand
    if isinstance(node, ast.BinOp):
        return _ARITHMETIC[type(node.op)](_evaluate(node.left, value_of), _evaluate(node.right, value_of))
    if isinstance(node, ast.BoolOp):
        values = (_evaluate(v, value_of) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    left = _evaluate(node.left, value_of)
    for relation, right_node in zip(node.ops, node.comparators):
        right = _evaluate(right_node, value_of)
        if not _RELATIONS[type(relation)](left, right):
            return False
        left = right
    return True


def _number_at(facts: dict[str, Any], name: str, axis: int) -> int | float:
    """Fact ``name`` (at ``axis``, for a per-axis fact) as a number; LookupError when there is none."""
    value = facts.get(name)
    if isinstance(value, (list, tuple)):
        value = value[axis] if axis < len(value) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LookupError(name)
    return value


def relation_holds(expression: str, facts: dict[str, Any]) -> bool:
    """Whether ``expression`` holds on some axis, each per-axis fact (a list) taken at that axis; a fact
    that is missing or not a number makes it fail."""
    tree = parse_relation(expression)
    axes = facts.get("dims") or max((len(v) for v in facts.values() if isinstance(v, (list, tuple))), default=1)
    for axis in range(max(axes, 1)):
        try:
            if _evaluate(tree, lambda name, axis=axis: _number_at(facts, name, axis)):
                return True
        except (LookupError, ZeroDivisionError, TypeError):
            continue
    return False


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
        for table in ("when", "finding", "machine", "seen_on"):
            if not isinstance(entry.get(table, {}), dict):
                raise ExpectationsError(f"{where}: {table!r} must be a table of predicates")
        unknown_facets = set(entry.get("finding", {})) - set(FINDING_FACETS)
        if unknown_facets:
            raise ExpectationsError(f"{where}: 'finding' names unknown facets {sorted(unknown_facets)} "
                                    f"(known: {', '.join(FINDING_FACETS)})")
        relations = _names(entry.get("where", []), where, "where")
        for relation in relations:
            try:
                parse_relation(relation)
            except (SyntaxError, ValueError) as exc:
                raise ExpectationsError(f"{where}: 'where' expression {relation!r}: {exc}") from None
        seen.add(entry["id"])
        rules.append(Rule(id=str(entry["id"]), impl=_names(entry["impl"], where, "impl"),
                          check=_names(entry["check"], where, "check"), reason=str(entry["reason"]),
                          link=str(entry.get("link", "")),
                          device=_names(entry.get("device", []), where, "device"),
                          dtype=_names(entry.get("dtype", []), where, "dtype"),
                          when=dict(entry.get("when", {})), where=relations, finding=dict(entry.get("finding", {})),
                          machine=dict(entry.get("machine", {})), seen_on=dict(entry.get("seen_on", {})),
                          broad=str(entry.get("broad", ""))))
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


def inherit(rules: list[Rule], hosts: dict[str, tuple[str, ...]]) -> list[Rule]:
    """The rules with each implementation built on a host (``hosts``: implementation -> the hosts it
    declares in ``built_on``) added to every rule naming that host, remembered as inherited."""
    inherited = []
    for rule in rules:
        heirs = {impl: host for impl, named in hosts.items() for host in named
                 if host in rule.impl and impl not in rule.impl}
        inherited.append(replace(rule, impl=rule.impl + tuple(heirs), inherited={**rule.inherited, **heirs})
                         if heirs else rule)
    return inherited


def in_force(rules: list[Rule], machine: dict[str, Any]) -> list[Rule]:
    """The rules whose machine predicates hold on a machine with these facts."""
    return [rule for rule in rules if rule.holds_on(machine)]


def match(rules: list[Rule], impl: str, check: str, device: str, dtype: str,
          facts: dict[str, Any], facets: dict[str, Any] | None = None) -> Rule | None:
    """The first rule that declares this discrepancy (problem ``facts``, finding ``facets``) as known, or None."""
    return next((rule for rule in rules if rule.matches(impl, check, device, dtype, facts, facets)), None)


def stale(rules: list[Rule], matched_ids: set[str], impls_run: set[str], checks_run: set[str]) -> list[Rule]:
    """Rules that matched nothing although the run exercised their implementation and check."""
    return [rule for rule in rules if rule.id not in matched_ids
            and set(rule.impl) & impls_run and set(rule.check) & checks_run]
