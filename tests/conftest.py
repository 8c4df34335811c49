"""Helpers for the project's own tests: the conformance gate run in this process (pytester), as a
user's ``python -m pytest suites`` would run it, with its own report folder."""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot  # noqa: F401  (imported once here: gate runs in this process draw report pictures)
import pytest
import torch  # noqa: F401  (imported once here: pytester's in-process gate runs would re-import it)
from hypothesis import settings

# The gate's parts, imported once for the same reason (the plugin's entry imports them only when a gate runs)
from convt_conformance.suites.plugin import PARTS
from convt_conformance.suites.plugin.profiles import profile_settings

ROOT = Path(__file__).resolve().parents[1]
PLANTED = ROOT / "tests" / "planted"


@dataclass
class GateRun:
    returncode: int
    output: str
    failed_tests: set[str]  # test function names (without parameters) that failed

    def failed(self, test: str) -> bool:
        return test in self.failed_tests


def run_gate(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> GateRun:
    """Run the conformance gate (``pytest suites``) in this process, on the repository's suites."""
    number = len(list(tmp_path.glob("junit-*")))
    junit = tmp_path / f"junit-{number}.xml"
    # Each run writes (and replays the corpus of) its own report folder, never the developer's.
    isolated = [] if "--report-dir" in args else ["--report-dir", str(tmp_path / f"reports-{number}")]
    workers = [] if "-n" in args else ["-n", "0"]
    result = pytester.runpytest_inprocess(str(ROOT / "suites"), "--rootdir", str(ROOT), "-q", "-p", "no:cacheprovider",
                                          *workers, f"--junitxml={junit}", *isolated, *args)
    failed = set()
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.add(case.get("name", "").split("[")[0])
    return GateRun(int(result.ret), "\n".join(result.outlines + result.errlines), failed)


@pytest.fixture
def gate(pytester: pytest.Pytester, tmp_path: Path):
    return lambda *args: run_gate(pytester, tmp_path, *args)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, so that pytest-xdist's workers share the long ones instead of one worker
    finishing the run alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Idle workers take tests from busy ones: a handful of self-tests take most of the time."""
    from xdist.scheduler import WorkStealingScheduling

    return WorkStealingScheduling(config, log)


for _part in PARTS:
    importlib.import_module(f"convt_conformance.suites.plugin.{_part}")

# The project's own Hypothesis tests run as the gate's do (derandomized, no deadline): the gate no longer
# loads its profile process-wide, and a first example's imports would overrun Hypothesis' default deadline.
settings.register_profile("convt-self-tests", profile_settings("ci"))
settings.load_profile("convt-self-tests")
