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
    junit = tmp_path / f"junit-{len(list(tmp_path.glob('junit-*')))}.xml"
    command = [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "-n", "0",
               f"--junitxml={junit}", *args]
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
