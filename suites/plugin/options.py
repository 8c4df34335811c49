"""The gate's command-line options. Cheap to import (no torch): every pytest session in which the package
is installed adds them, gate or not."""

from __future__ import annotations

import os
import time

import pytest

from ..limits import DEFAULT_CALL_TIMEOUT, DEFAULT_HANG_SHRINK_SECONDS

DEFAULT_REPORT_DIR = "convt-reports"  # under the directory pytest is invoked from
PROFILE_NAMES = ("ci", "dev", "soak", "replay", "fuzz", "scale")


class SessionStart:
    """When this session's plugins were loaded: implementations registered after it (by the user's
    conftest.py or a module it imports) are this session's to check."""

    name = "convt-session-start"

    def __init__(self) -> None:
        self.stamp = time.monotonic_ns()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("convt-conformance")
    group.addoption("--impl-module", action="append", default=[], metavar="PATH_OR_MODULE",
                    help="import a plugin module (file path or dotted name) that registers implementations")
    group.addoption("--impl", action="append", default=[], metavar="NAME",
                    help="check only this implementation (repeatable; default: all available)")
    group.addoption("--device", action="append", default=[], metavar="DEVICE",
                    help="check only on this device (repeatable: cpu, cuda)")
    group.addoption("--dtype", action="append", default=[], metavar="DTYPE",
                    help="check only this dtype (repeatable)")
    group.addoption("--expectations", action="append", default=[], metavar="TOML",
                    help="known-discrepancy rules to add to the shipped ones (repeatable)")
    group.addoption("--no-shipped-expectations", action="store_true",
                    help="do not load the shipped rules (only those given with --expectations)")
    group.addoption("--report-dir", default=DEFAULT_REPORT_DIR, metavar="DIR",
                    help="where records, report.json/.md/.html and new corpus entries go (default: ./convt-reports)")
    group.addoption("--convt-profile", choices=PROFILE_NAMES, default=os.environ.get("CONVT_PROFILE", "ci"),
                    help="the gate's Hypothesis settings: ci (derandomized, 30 examples; the default, or "
                         "$CONVT_PROFILE), dev, soak, replay (the example database only), fuzz or scale (the "
                         "catalog at its models' sizes and across 2^31 elements, larger searched problems); "
                         "they apply to the gate's tests alone")
    group.addoption("--contain", choices=("plugins", "all", "none"), default="plugins",
                    help="run implementations in worker processes, so crashes and hangs become findings "
                         "(default: plugins, i.e. plugin modules and the third-party framework adapters)")
    group.addoption("--call-timeout", type=float, default=DEFAULT_CALL_TIMEOUT, metavar="SECONDS",
                    help="the most a contained implementation's call may take (default "
                         f"{DEFAULT_CALL_TIMEOUT:g}); once it has answered, calls get an adaptive limit "
                         "below this, at least 10 s")
    group.addoption("--hang-shrink-seconds", type=float, default=DEFAULT_HANG_SHRINK_SECONDS, metavar="SECONDS",
                    help="how long one test may shrink a hang before it is reported as found, unminimized "
                         f"(default {DEFAULT_HANG_SHRINK_SECONDS:g})")
    group.addoption("--examples", type=int, default=None, metavar="N",
                    help="examples per test instead of the profile's (the ci profile: 30); more examples "
                         "reach rare regions more surely, in proportionally more time")
    group.addoption("--fuzz-seconds", type=float, default=None, metavar="SECONDS",
                    help="a fuzz campaign: random seeds, every test a slice of this wall-clock budget, ending on time")
    group.addoption("--shard", default=None, metavar="I/N",
                    help="run only shard I of N (1-based): N machines get disjoint tests")
    group.addoption("--example-db", default=None, metavar="URL_OR_DIR",
                    help="Hypothesis example database: redis://HOST:PORT/DB (shared between machines) or a folder")
    group.addoption("--torch-threads", type=int, default=None, metavar="N",
                    help="torch's intra-op threads in each process (default: the cores divided among the xdist "
                         "workers; more threads than cores makes OpenMP kernels many times slower)")
    group.addoption("--corpus", action="append", default=[], metavar="DIR",
                    help="extra corpus folder of problems to replay first (repeatable; the shipped corpus always)")


