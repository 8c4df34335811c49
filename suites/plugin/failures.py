"""A failing gate test reads as its discrepancies in a few lines each: the finding, its problem and the
command that reproduces it. The full finding (details, explanation, picture) is in the report files;
a traceback into the harness and Hypothesis' notes would bury it. A test that met several kinds of
finding (Hypothesis raises them together as an ExceptionGroup) reads as those findings, one after another."""

from __future__ import annotations

import pytest
from _pytest._code.code import ExceptionChainRepr, ReprEntryNative, ReprFileLocation, ReprTraceback

from ..verdicts import Discrepancy


def discrepancies(error: BaseException) -> list[Discrepancy] | None:
    """The discrepancies ``error`` holds (itself, or every leaf of an exception group), or None when
    anything else is in it: a harness fault keeps its traceback."""
    if isinstance(error, Discrepancy):
        return [error]
    if isinstance(error, BaseExceptionGroup):
        found = [discrepancies(inner) for inner in error.exceptions]
        return None if any(f is None for f in found) else [d for group in found for d in group]
    return None


def brief_report(item: pytest.Item, error: BaseException, found: list[Discrepancy]) -> ExceptionChainRepr:
    """A report body of the discrepancies' brief texts, its one-line message the first one's first line
    (what pytest's short summary prints). Hypothesis' word that a failure did not happen again stays."""
    text = "\n".join(d.brief for d in found)
    if len(found) > 1:
        text = f"{len(found)} kinds of discrepancy met by this test:\n{text}"
    if not isinstance(error, Discrepancy) and type(error).__name__ != "ExceptionGroup":  # FlakyFailure
        text = f"{type(error).__name__}: {str(error).splitlines()[0]}\n{text}"
    path, line, _ = item.location
    crash = ReprFileLocation(path, (line or 0) + 1, found[0].brief.splitlines()[0])
    return ExceptionChainRepr([(ReprTraceback([ReprEntryNative([text + "\n"])], None, "native"), crash, None)])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if call.when == "call" and call.excinfo is not None and report.failed:
        found = discrepancies(call.excinfo.value)
        if found:
            report.longrepr = brief_report(item, call.excinfo.value, found)
    return report
