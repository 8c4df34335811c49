"""The end of a session: xdist workers send their tallies to the controller, which merges the records
into report.json/.md/.html, names stale expectation rules, and prints the run summary."""

from __future__ import annotations

import pytest

from convt_conformance.reports import expectations
from convt_conformance.reports.files import DOCUMENTS, RECORD_GLOB, REPORT_JSON, TALLY_MAIN
from convt_conformance.reports.records import merge, write_json
from convt_conformance.reports.render import met_in, shortened, write_documents

from ..all_checks import CALL_FINDINGS, CHECKS, VALUE_CHECKS
from ..run import Run, run_of

_TALLY = "convt_tally"  # what a worker sends the controller
EMPTY_VERDICT = "no example was checked: this run says nothing about the implementations, so it fails"


def _is_full_run(config: pytest.Config) -> bool:
    """Whether nothing narrowed the run below its implementations (stale rules mean something then)."""
    return not (config.getoption("keyword") or config.getoption("markexpr") or config.getoption("dtype")
                or config.getoption("device"))


def stale_rules(config: pytest.Config, run: Run) -> list[expectations.Rule]:
    """Rules that matched nothing although their implementation and check ran in full."""
    if not _is_full_run(config):
        return []
    ran = run.tally.checks_run()
    could_find = set(CALL_FINDINGS).union(*(CHECKS[name].kinds for name in ran if name in CHECKS))
    return expectations.stale(run.rules, set(run.tally.rules_matched), {impl for impl, _ in run.tally.examples},
                              could_find)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    run_of(node.config).tally.add(getattr(node, "workeroutput", {}).get(_TALLY, {}))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    run = run_of(config)
    if hasattr(config, "workerinput"):
        config.workeroutput[_TALLY] = run.tally.counts()
        return
    found = any(run.report_dir.glob(RECORD_GLOB))  # a finding cut off while shrinking counts no example
    campaign = bool(config.getoption("fuzz_seconds"))  # its report says how much it ran, even nothing
    if not (run.tally.examples or found) and (campaign or session.testscollected):
        if config.getoption("convt_profile") == "replay":  # it runs what the database holds, which may be nothing
            run.notices.append("the replay profile found nothing stored to replay")
        else:
            why = ("the campaign's clock ran out before the first example: give it more --seconds" if campaign
                   else "every test was skipped, deselected or stopped before its first example")
            run.notices.append(f"{EMPTY_VERDICT} ({why})")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not (run.tally.examples or found or campaign):
        return
    write_json(run.report_dir / TALLY_MAIN, run.tally.counts())
    stale = stale_rules(config, run)
    report, unreadable = merge(run.report_dir, {
        "environment": run.environment, "exit_status": int(session.exitstatus),
        "stale_rules": [{"id": r.id, "reason": r.reason, "status": r.unreproduced_status(run.environment),
                         "seen_on": r.seen_on, "machine": r.machine} for r in stale],
        "rules": {r.id: {"reason": r.reason, "link": r.link} for r in run.rules},
        "domain": domain_rows(run)})
    run.report = report
    try:
        write_documents(report, run.report_dir)
    except Exception as exc:  # noqa: BLE001  (report.json is written; the documents can be redone)
        unreadable.append(f"{'/'.join(DOCUMENTS)} not written ({type(exc).__name__}: {exc}); "
                        f"retry with: convt report render {run.report_dir / REPORT_JSON}")
    run.notices += unreadable
    if report["summary"]["verdict"] == "fail" and session.exitstatus == pytest.ExitCode.OK:
        # Every unexpected discrepancy fails the run, however its test ended (a campaign's clock may
        # have cut its shrinking short, and the test then passed for the time it had).
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def unreproduced(rule: expectations.Rule, machine: dict) -> str:
    """What a rule that matched nothing means, in words: fixed, or not met on this kind of machine."""
    status = rule.unreproduced_status(machine)
    if status == "fixed":
        return "stale (fixed?): the bug did not show where it was seen"
    keyed = {**rule.machine, **rule.seen_on}
    here = ", ".join(f"{key}={machine.get(key)}" for key in keyed)
    seen = ", ".join(f"{key}={value}" for key, value in rule.seen_on.items()) or "unstated"
    return f"{status} (here {here}; seen on {seen})"


def domain_rows(run: Run) -> list[dict]:
    """Each declared requirement of each implementation run, with the problems outside it that were
    refused and accepted (zeros where none was met)."""
    counted = {(row["impl"], row["requirement"]): row for row in run.tally.summary()["domain"]}
    return [counted.get((impl.name, requirement), {"impl": impl.name, "requirement": requirement, "refused": 0,
                                                   "accepted": 0})
            for impl in run.implementations for requirement, _ in impl.domain]


def _write_domains(write, run: Run) -> None:
    rows = domain_rows(run)
    if not rows:
        return
    write("")
    write("declared domains, narrower than PyTorch's: valid problems outside each requirement, refused/accepted")
    for row in rows:
        write(f"  {row['impl']:30} {row['refused']:6} {row['accepted']:6}  needs {row['requirement']}")


def _write_rules(write, run: Run) -> None:
    """Per rule that named something run: how often it matched, and its breadth (the share of the examples
    of its implementations, dtypes and checks that lay in its region, which it could have excused)."""
    breadth = run.tally.summary()["breadth"]
    rows = [rule for rule in run.rules if rule.id in breadth or run.tally.rules_matched.get(rule.id)]
    if not rows:
        return
    write("")
    write("known-discrepancy rules: matched, and examples in the rule's region / examples it names")
    for rule in rows:
        seen = breadth.get(rule.id, {"examples": 0, "in_region": 0, "share": 0.0})
        wide = "  (broad: see its reason)" if rule.broad else (
            "  (broader than 5%)" if seen["share"] > expectations.BREADTH_LIMIT else "")
        heirs = "".join(f"  (inherited by {impl} from {host})" for impl, host in rule.inherited.items())
        write(f"  {run.tally.rules_matched.get(rule.id, 0):6} matched {seen['in_region']:6} / {seen['examples']:<6} "
              f"{100 * seen['share']:5.1f}%  {rule.id}{wide}{heirs}")


def _write_causes(write, run: Run) -> None:
    """The unexpected discrepancies as causes, severe first (the report lists one example of each)."""
    found = [c for c in run.report.get("causes", []) if c["status"] == "unexpected"] if run.report else []
    for number, cause in enumerate(found, 1):
        write(f"cause {number} ({cause['severity']}, {cause['count']} found): {cause['impl']}: "
              f"{shortened(cause['title'], 160)}")
        write(f"    met in {met_in(cause)}; smallest: {cause['problem']}")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    run = run_of(config)
    tally = run.tally
    if hasattr(config, "workerinput"):
        return
    if not (tally.examples or (run.report_dir / REPORT_JSON).exists()):
        for notice in run.notices:
            if notice.startswith(EMPTY_VERDICT) or notice.startswith("the replay profile"):
                terminalreporter.write_line(f"convt-conformance: {notice}", red=True)
        return
    write = terminalreporter.write_line
    terminalreporter.section("convt-conformance summary")
    write(f"{'implementation':30} {'check':18} {'examples':>9} {'failed':>7} {'known':>6}")
    for row in tally.summary()["table"]:
        write(f"{row['impl']:30} {row['check']:18} {row['examples']:9} {row['failed']:7} {row['known']:6}")
    _write_domains(write, run)
    write("")
    write("bug-prone regions: examples checked there, all checks and per value check")
    widths = {check: max(8, len(check)) for check in VALUE_CHECKS}
    write(f"  {'all':>8} " + " ".join(f"{check:>{widths[check]}}" for check in VALUE_CHECKS))
    for region, count in sorted(tally.regions.items(), key=lambda item: -item[1]):
        per_check = " ".join(f"{tally.evaluated.get(f'{check}: {region}', 0):{widths[check]}}"
                             for check in VALUE_CHECKS)
        write(f"  {count:8} {per_check}  {region}")
    _write_rules(write, run)
    for rule in stale_rules(config, run):
        write(f"expectation {rule.id!r} matched nothing although {'/'.join(rule.impl)} x {'/'.join(rule.check)} ran: "
              f"{unreproduced(rule, run.environment)}")
    for notice in run.notices:
        write(f"report: {notice}")
    if (run.report_dir / REPORT_JSON).exists():
        _write_causes(write, run)
        write(f"reports: {run.report_dir / REPORT_JSON}, {', '.join(DOCUMENTS)}")
