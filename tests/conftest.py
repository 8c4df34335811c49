"""Helpers for the harness's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLANTED = ROOT / "tests" / "planted"


@dataclass
class GateRun:
    returncode: int
    output: str
    failed_tests: set[str]  # test function names (without parameters) that failed

    def failed(self, test: str) -> bool:
        return test in self.failed_tests


def run_gate(tmp_path: Path, *args: str, timeout: int = 900) -> GateRun:
    """Run the conformance gate (``python -m pytest suites``) in a fresh process, as a user would."""
    number = len(list(tmp_path.glob("junit-*")))
    junit = tmp_path / f"junit-{number}.xml"
    # Each run writes (and replays the corpus of) its own report folder, never the developer's.
    isolated = [] if "--report-dir" in args else ["--report-dir", str(tmp_path / f"reports-{number}")]
    command = [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "-n", "0",
               f"--junitxml={junit}", *isolated, *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    failed = set()
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.add(case.get("name", "").split("[")[0])
    return GateRun(done.returncode, done.stdout + done.stderr, failed)


@pytest.fixture
def gate(tmp_path: Path):
    return lambda *args, **kwargs: run_gate(tmp_path, *args, **kwargs)
