"""Concluding a check inside a test: count the example, label its regions for Hypothesis' statistics,
match known discrepancies, and fail with a message and a record a person can act on."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pytest
import torch
from hypothesis import event, note, reject, target
from hypothesis.control import current_build_context

from convt_conformance.reports import expectations

from . import campaign, oracles
from .case import Case
from .checks import CALL_FINDINGS, CHECKS, Untrusted, prepared_ahead, run_on
from .containment import ContainedCall
from .corpus import save_to_corpus
from .evaluation import Evaluation
from .evidence import value_evidence
from .problem import Problem
from .reproduce import repro_command, standalone_script
from .run import HangHunt, Run
from .strategies import regions_of


class Discrepancy(AssertionError):
    """An implementation departs from the contract; the message says where and how, ``brief`` in the few
    lines a console shows (the finding, its problem, its reproduce command; the rest is in the report)."""

    def __init__(self, message: str, brief: str | None = None) -> None:
        super().__init__(message)
        self.brief = brief or message


_KINDS: dict[str, type[Discrepancy]] = {}


def discrepancy(kind: str, message: str, brief: str | None = None) -> Discrepancy:
    """A failure of its own type per kind of finding: Hypothesis tells failures apart by type and origin,
    so each kind one test meets (a refusal, a wrong value, a crash) is shrunk and reported on its own
    instead of the search hopping from one kind to another while it shrinks."""
    if kind not in _KINDS:
        name = "".join(part.capitalize() for part in re.split(r"[^a-zA-Z0-9]+", kind) if part) + "Discrepancy"
        _KINDS[kind] = type(name, (Discrepancy,), {"__module__": __name__, "kind": kind})
    return _KINDS[kind](message, brief)


def _in_hypothesis() -> bool:
    try:
        current_build_context()
        return True
    except Exception:  # noqa: BLE001  (no Hypothesis context: a corpus replay or repro)
        return False


def _event(text: str) -> None:
    if _in_hypothesis():
        event(text)


def _is_final_example() -> bool:
    """True outside Hypothesis (a replay) or on its final run of the minimal failing example."""
    return current_build_context().is_final if _in_hypothesis() else True


def run_checks(run: Run, case: Case, problems: list[Problem], check: str) -> None:
    """Run one check on each of an example's problems, in order; a contained implementation answers
    their plain calls from one round trip where the check allows it (see ``prepared_ahead``)."""
    __tracebackhide__ = True
    _pace_a_hang(run, case)  # before any call is made ahead: nothing is while a hang is shrunk
    for problem, prepared in zip(problems, prepared_ahead(case, problems, check)):
        run_check(run, case, problem, check, prepared)


def run_check(run: Run, case: Case, problem: Problem, check: str, prepared: Evaluation | None = None) -> None:
    """Run one check inside a Hypothesis test: redraw untrusted problems, label the problem, steer the
    search towards large errors, and conclude."""
    __tracebackhide__ = True
    campaign.stop_if_spent(run.budget, run.interrupted,
                           lambda *failure: record_unminimized(run, *failure))
    _pace_a_hang(run, case)
    try:
        evaluation, finding = run_on(case, problem, check, prepared)
    except Untrusted as untrusted:
        event(f"redrawn: {untrusted}")
        reject()
    problem = evaluation.problem
    if evaluation.refused is not None:
        for requirement in case.impl.outside_domain(problem):
            run.tally.count("domain", (case.impl.name, requirement, "refused" if evaluation.refused else "accepted"))
            _event(f"outside the domain: {requirement}")
    if evaluation.refused is None and problem.broken_rule is None:  # outside a domain nothing is evaluated
        label(run, problem, check)
    else:
        event(f"rule: {problem.broken_rule}")
    measured = evaluation.measured
    if measured:
        target(min(measured["max"], 1e6), label="max error / allowance")
        target(min(measured["rms"], 1e6), label="RMS normalized error")
    conclude(run, case, problem, check, finding)


HANG_CAPPED = "shrinking a hang took its whole --hang-shrink-seconds: recorded as found, not minimized"


def _pace_a_hang(run: Run, case: Case) -> None:
    """While a test shrinks a hang, calls get the short limit (the final replay the adaptive one), and
    past --hang-shrink-seconds the latest failing example is recorded unminimized and the test ends."""
    hunt = run.hangs.get(current_test())
    if isinstance(case.impl.fn, ContainedCall):
        case.impl.fn.shrinking_a_hang = hunt is not None and not _is_final_example()
    if hunt is None or _is_final_example() or time.monotonic() - hunt.started < run.hang_shrink_seconds:
        return
    del run.hangs[current_test()]
    _record_as_found(run, f"not minimized: shrinking a hang stopped after {run.hang_shrink_seconds:g} s",
                     *hunt.latest)
    pytest.skip(HANG_CAPPED)  # campaigns.py reports the test as failed


def rules_naming(run: Run, case: Case, check: str) -> list[expectations.Rule]:
    """The rules naming this implementation, dtype and a kind of finding this check can make (their
    breadth is counted over its examples)."""
    key = (case.impl.name, case.device, case.dtype_name, check)
    if key not in run.rules_naming:
        kinds = set(CHECKS[check].kinds) | set(CALL_FINDINGS) if check in CHECKS else {check}
        run.rules_naming[key] = [rule for rule in run.rules if any(
            rule.covers(case.impl.name, kind, case.device, case.dtype_name) for kind in kinds)]
    return run.rules_naming[key]


def label(run: Run, problem: Problem, check: str) -> None:
    """Label a valid problem's classes for Hypothesis' statistics and count, per check, the
    bug-prone regions it was evaluated in (after the check ran, so a redrawn problem never counts)."""
    _event(f"dims={problem.dims}")
    _event(f"layout={problem.layout}")
    for region in regions_of(problem):
        _event(f"region: {region}")
        run.tally.count("regions", region)
        run.tally.count("evaluated", f"{check}: {region}")


def facts_of(problem: Problem) -> dict[str, Any]:
    """What expectation rules may key on: the problem's fields plus derived facets."""
    facts = problem.to_dict()
    facts["dims"] = problem.dims
    facts["batch"] = problem.input_shape[0] if problem.batched else None
    facts["kernel_size"] = list(problem.weight_shape[2:])
    facts["input_size"] = list(problem.input_shape[-problem.dims:])
    facts["out_channels"] = problem.out_channels
    facts["in_channels_per_group"] = problem.weight_shape[0] // max(problem.groups, 1)
    facts["out_channels_per_group"] = problem.weight_shape[1]
    lengths = problem.formula_lengths()  # negative ones included, for invalid problems
    if lengths is not None:
        facts["output_size"] = list(lengths)
    facts["regions"] = regions_of(problem) if problem.broken_rule is None else []
    if problem.broken_rule is None:
        facts["reached_length"] = reached_lengths(problem)
    if problem.value_kind == "special":
        facts["nonfinite_in"] = [name for name, t in zip(("input", "weight", "bias"), problem.tensors())
                                 if t is not None and not torch.isfinite(t).all()]
    return facts


def reached_lengths(problem: Problem) -> list[int]:
    """Per axis, how many output positions some product lands in (0: padding crops every tap away)."""
    return [_reached(*axis) for axis in zip(problem.input_shape[-problem.dims:], problem.weight_shape[2:],
                                            problem.stride, problem.padding, problem.dilation,
                                            problem.formula_lengths())]


def _reached(L: int, k: int, s: int, p: int, d: int, out: int) -> int:
    """How many of the positions ``o = i*s + j*d - p`` (``i < L``, ``j < k``) lie in ``[0, out)``, counted as
    intervals per stride phase (a model-size axis has billions of positions)."""
    if L <= 0 or out <= 0:
        return 0
    per_phase: dict[int, list[tuple[int, int]]] = {}
    for j in range(k):
        phase, start = (j * d - p) % s, (j * d - p) // s  # o = (start + i) * s + phase
        per_phase.setdefault(phase, []).append((start, start + L - 1))
    reached = 0
    for phase, intervals in per_phase.items():
        hi = (out - 1 - phase) // s  # q with 0 <= q*s + phase < out: 0 <= q <= hi
        end = -1
        for first, last in sorted(intervals):
            first, last = max(first, end + 1, 0), min(last, hi)
            if first <= last:
                reached += last - first + 1
                end = last
    return reached


def conclude(run: Run, case: Case, problem: Problem, check: str, finding: oracles.Finding | None) -> None:
    """Count the example; a finding either matches a known-discrepancy rule (counted as known, not
    failed, not shrunk) or fails the example with a message a person can act on, and a record."""
    __tracebackhide__ = True
    run.write_progress()
    final = _is_final_example()
    naming = rules_naming(run, case, check)
    facts = facts_of(problem) if finding is not None or naming else {}
    rule = finding and expectations.match(run.rules, case.impl.name, finding.check, case.device, case.dtype_name,
                                          facts, finding.facets)
    if finding is None or final or rule is not None:  # shrinking steps of a failure do not count
        run.tally.count("examples", (case.impl.name, check))
        for named in naming:  # each rule's breadth: the examples it names, and those in its region
            run.tally.count("rule_drawn", named.id)
            run.tally.count("rule_region", named.id, int(named.in_region(facts)))
    if finding is None:
        return
    key = (case.impl.name, finding.check)
    if rule is not None:
        run.tally.count("known", key)
        run.tally.count("rules_matched", rule.id)
        _event(f"known discrepancy: {rule.id}")
        if (case.id, finding.check, rule.id) not in run.known_recorded:  # the first one, as an example
            run.known_recorded.add((case.id, finding.check, rule.id))
            _record(run, case, problem, check, finding, status="known", rule=rule)
        return
    if not final:
        if run.budget is not None:
            run.budget.note_failure(case, problem, check, finding)
        if finding.check == "timeout":
            hunt = run.hangs.setdefault(current_test(), HangHunt(time.monotonic(), ()))
            hunt.latest = (case, problem, check, finding)
        run.unrecorded.setdefault((current_test(), finding.check), (case, problem, check, finding))
        raise discrepancy(finding.check, f"{case.id}: {finding.summary}")  # a step of shrinking; the final run reports
    run.unrecorded.pop((current_test(), finding.check), None)
    run.hangs.pop(current_test(), None)
    run.tally.count("failed", key)
    if _in_hypothesis():
        note(f"problem: {problem.describe()}")
    _record(run, case, problem, check, finding, status="unexpected")
    where = f"  problem: {problem.describe()}\n  reproduce: {repro_command(case, problem, check, run.plugin_modules)}"
    raise discrepancy(finding.check, f"{case.id}: {finding.render()}\n{where}",
                      f"{case.id}: {finding.check}: {finding.summary}\n{where}")


def current_test() -> str:
    """The node id of the test running now (pytest's own variable)."""
    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]


def record_not_reproduced(run: Run, case: Case, problem: Problem, check: str, finding: oracles.Finding) -> None:
    """Keep a failure that did not happen again when Hypothesis replayed it (a nondeterministic result)."""
    _record_as_found(run, "did not fail again on replay: nondeterministic", case, problem, check, finding)


def record_unminimized(run: Run, case: Case, problem: Problem, check: str, finding: oracles.Finding) -> None:
    """Keep a failure whose shrinking the campaign clock cut short."""
    _record_as_found(run, "not minimized: the campaign's time ran out", case, problem, check, finding)


def _record_as_found(run: Run, why: str, case: Case, problem: Problem, check: str, finding: oracles.Finding) -> None:
    """An unexpected failure recorded as first found, not as Hypothesis' final replay; ``why`` says so."""
    run.unrecorded.pop((current_test(), finding.check), None)
    finding.summary = f"({why}) {finding.summary}"
    run.tally.count("failed", (case.impl.name, finding.check))
    _record(run, case, problem, check, finding, status="unexpected")


def _record(run: Run, case: Case, problem: Problem, check: str, finding: oracles.Finding, status: str,
            rule: expectations.Rule | None = None) -> None:
    record = {
        "impl": case.impl.name, "device": case.device, "dtype": case.dtype_name, "check": finding.check,
        "ran_check": check,
        "status": status, "summary": finding.summary, "details": finding.details, "facets": finding.facets,
        "picture": finding.picture, "problem": problem.to_dict(), "descriptor": problem.describe(),
        "repro": repro_command(case, problem, check, run.plugin_modules),  # the check that ran: a crash has none
        "script": standalone_script(case, problem, check, run.plugin_modules),
        "test": current_test(),
        "plugin_modules": list(run.plugin_modules),
        "environment": run.environment,
    }
    if status == "unexpected":  # what the defect is, for grouping findings into causes (reports.causes)
        record["evidence"] = value_evidence(case, problem, finding.check, check)
    if rule is not None:
        record["rule"] = {"id": rule.id, "reason": rule.reason, "link": rule.link}
        if case.impl.name in rule.inherited:
            record["rule"]["inherited_from"] = rule.inherited[case.impl.name]
    if run.writer is not None:
        run.writer.write(record)
    if run.corpus_dir is not None and status == "unexpected":  # replayed by the check that ran
        save_to_corpus(run.corpus_dir, case, problem, check)
