"""Fuzz campaigns (``--fuzz-seconds``): one wall-clock deadline shared by the controller and its xdist
workers, a slice of it per test, a live progress line, and one Ctrl-C that ends the run with its reports."""

from __future__ import annotations

import time

import pytest

from .. import campaign, verdicts
from ..run import run_of
from .parametrize import CORPUS_TESTS, gate_test

_PROGRESS = pytest.StashKey[campaign.Progress]()
_DEADLINE = "convt_deadline"  # what the controller sends each xdist worker


@pytest.hookimpl(trylast=True)  # after the run exists
def pytest_configure(config: pytest.Config) -> None:
    seconds = config.getoption("fuzz_seconds")
    if not seconds:
        return
    run = run_of(config)
    config.add_cleanup(campaign.install_interrupt_guard(run.interrupted))
    if run.worker != "main":
        run.deadline = config.workerinput[_DEADLINE]
        return
    run.deadline = time.time() + seconds
    parallel = bool(getattr(config.option, "numprocesses", None))
    snapshot = (lambda: campaign.read_snapshots(run.report_dir)) if parallel else run.tally.counts
    config.stash[_PROGRESS] = progress = campaign.Progress(seconds, snapshot)
    progress.start()
    config.add_cleanup(progress.close)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist: every worker ends on the controller's deadline."""
    deadline = run_of(node.config).deadline
    if deadline is not None:
        node.workerinput[_DEADLINE] = deadline


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Campaigns hunt for new bugs; the gate replays the corpus."""
    if config.getoption("fuzz_seconds"):
        replays = [item for item in items if gate_test(item) == CORPUS_TESTS]
        config.hook.pytest_deselected(items=replays)
        items[:] = [item for item in items if item not in replays]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Each test of this process gets a slice of the clock (once the shard and -k/-m have chosen them)."""
    seconds = session.config.getoption("fuzz_seconds")
    if not seconds:
        return
    runnable = [item for item in session.items if not item.get_closest_marker("skip")]
    workers = getattr(session.config, "workerinput", {}).get("workercount", 1)
    run = run_of(session.config)
    run.budget = campaign.budget(run.deadline, seconds, len(runnable), workers)


def pytest_runtest_setup(item: pytest.Item) -> None:
    run = run_of(item.config)
    if run.interrupted.is_set():
        raise KeyboardInterrupt
    if run.budget is not None:
        if run.budget.over():
            pytest.skip(campaign.NOT_REACHED)
        run.budget.start_test()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """A test that ended because its campaign slice was spent passed for the time it had. A test that
    failed without recording its failure (Hypothesis found it flaky) gets that failure recorded."""
    report = yield
    if report.skipped and campaign.SKIP_REASON in str(report.longrepr):
        report.outcome = "passed"
        report.longrepr = None
    elif report.skipped and verdicts.HANG_CAPPED in str(report.longrepr):
        report.outcome = "failed"  # a hang was found and recorded; only its shrinking was cut short
        report.longrepr = f"{item.nodeid}: a hang was found (see the report); {verdicts.HANG_CAPPED}"
    if report.when == "call":
        run = run_of(item.config)
        for key in [key for key in run.unrecorded if key[0] == item.nodeid]:
            unrecorded = run.unrecorded.pop(key)
            if report.failed:
                verdicts.record_not_reproduced(run, *unrecorded)
    return report
