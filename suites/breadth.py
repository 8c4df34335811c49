"""A known-discrepancy rule's breadth: the share of the problems the gate draws for what the rule names
(its implementations, dtypes, and the checks that can make its kind of finding) that lie in its region,
i.e. that it could excuse before its fingerprint is asked."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from convt_conformance import impls
from convt_conformance.reports.expectations import Rule

from .all_checks import CALL_FINDINGS, CHECKS
from .case import Case
from .verdicts import facts_of


def checks_naming(rule: Rule) -> list[str]:
    """The checks whose failures include a kind the rule names (a call failure: every check)."""
    if set(rule.check) & set(CALL_FINDINGS):
        return list(CHECKS)
    return [name for name, check in CHECKS.items() if set(check.kinds) & set(rule.check)]


def drawn_facts(case: Case, check: str, examples: int) -> list[dict]:
    """The facts of the problems of ``examples`` examples of ``check`` on ``case``, drawn as the gate draws
    them (derandomized)."""
    registered, facts = CHECKS[check], []
    if registered.skip_reason(case):
        return facts

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(registered.draws(case))
    def draw(problems):
        facts.extend(facts_of(problem) for problem in problems)

    draw()
    return facts


def breadth(rule: Rule, examples: int) -> tuple[int, int]:
    """(problems in the rule's region, problems drawn) over what it names that is usable here."""
    inside = total = 0
    usable = {impl.name: impl for impl in impls.available()}
    for impl in (usable[name] for name in rule.impl if name in usable):
        devices = [d for d in impl.usable_devices if not rule.device or d in rule.device][:1]
        for device in devices:
            for dtype in (d for d in impl.dtypes if not rule.dtype or d in rule.dtype):
                for check in checks_naming(rule):
                    facts = drawn_facts(Case(impl, device, dtype), check, examples)
                    total += len(facts)
                    inside += sum(rule.in_region(f) for f in facts)
    return inside, total
