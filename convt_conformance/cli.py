"""``convt``: the conformance gate's command line, runnable from any directory.

    convt gate [pytest options]        the conformance gate (e.g. -n auto, --impl-module my_kernel.py)
    convt fuzz --seconds N [options]   a time-budgeted fuzz campaign with fresh random seeds
    convt repro ...                    rerun one finding (from a report, or a problem) and explain it
    convt report merge|combine|render|diff ...   the report files
    convt list [--impl-module M]       every implementation, its declarations, and why one is unusable
    convt version

Reports and new corpus entries go to ./convt-reports (--report-dir DIR), never into the package.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__

COMMANDS = ("gate", "fuzz", "repro", "report", "list", "version")


def gate(args: Sequence[str]) -> int:
    """Run the gate's suites under pytest, rooted in the working directory: pytest's cache and the
    reports land there, and no byte code is written into the installed package."""
    import pytest

    from . import suites  # light: the package of the suites, wherever it is installed (or a checkout's folder)

    sys.dont_write_bytecode = True
    # this command imported the package before pytest could mark the plugin's package for assertion rewriting
    quiet = "ignore:Module already imported so cannot be rewritten; convt_conformance:pytest.PytestAssertRewriteWarning"
    return int(pytest.main([str(Path(suites.__file__).parent), "--rootdir", os.getcwd(), "-W", quiet, *args]))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "" not in sys.path and os.getcwd() not in sys.path:  # as `python -m` does: a plugin's own imports resolve
        sys.path.insert(0, os.getcwd())
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "gate":
        return gate(rest)
    if command in ("version", "--version"):
        print(f"convt-conformance {__version__}")
        return 0
    if command not in COMMANDS:
        print(f"convt: unknown command {command!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return _library_command(command, rest)


def _library_command(command: str, rest: list[str]) -> int:
    from .impls import PluginError, RegistryError, listing
    from .reports import commands as report_commands
    from .reports.records import ReportError
    from .suites import commands

    if command == "report":
        return report_commands.main(rest)
    if command == "list":
        return listing.main(rest)
    try:
        return commands.fuzz(rest) if command == "fuzz" else commands.repro(rest)
    except (commands.UsageProblem, ReportError, PluginError, RegistryError) as exc:
        print(f"convt {command}: {exc}", file=sys.stderr)
        return 2
