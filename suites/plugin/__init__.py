"""The conformance gate's pytest plugin.

Installed, the package's ``pytest11`` entry point loads this module in every pytest session; a checkout's
``conftest.py`` loads it too. It adds the gate's options everywhere, and takes part only in a session
that collects the gate's suites (``convt gate``, ``pytest --pyargs convt_conformance.suites``, or the
suites' folder): then it registers its parts, one module per concern:

- ``setup``: the :class:`..run.Run` built from the options at configure time, kept in ``config.stash``;
- ``parametrize``: implementation x device x dtype cases, corpus entries, the gate's Hypothesis
  settings (``profiles``), test order and shards;
- ``campaigns``: time-budgeted fuzz campaigns (slices, the shared deadline, Ctrl-C);
- ``failures``: a failing test's discrepancies in a few lines each;
- ``summary``: the report and the terminal summary at the end of the session.

A user's other tests in the same session see no Hypothesis profile, torch thread count or other global
state of the gate's, and importing this module imports no torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import convt_conformance

from .options import SessionStart, add_options

SUITES = Path(__file__).resolve().parents[1]
SUITES_MODULE = __package__.rpartition(".")[0]  # convt_conformance.suites
PARTS = ("setup", "parametrize", "campaigns", "failures", "summary")


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    add_options(parser)
    pluginmanager.register(SessionStart(), SessionStart.name)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if convt_conformance.CHECKOUT is not None:  # ahead of the assertion rewriter this session put first
        convt_conformance.alias_top_level_packages(convt_conformance.CHECKOUT)
    if not runs_the_gate(config):
        return
    for part in PARTS:
        name = f"{__name__}.{part}"
        if config.pluginmanager.get_plugin(name) is None:
            config.pluginmanager.register(importlib.import_module(name), name)


def runs_the_gate(config: pytest.Config) -> bool:
    """Whether this session collects the gate's suites: an argument names their folder, a file or test
    in it, a checkout's root, or (with ``--pyargs``) their module."""
    for arg in config.args:
        target = arg.split("::")[0]
        if config.option.pyargs and (target == SUITES_MODULE or target.startswith(SUITES_MODULE + ".")):
            return True
        path = (config.invocation_params.dir / target).resolve()
        if path == SUITES or SUITES in path.parents:
            return True
        if convt_conformance.CHECKOUT is not None and path == convt_conformance.CHECKOUT.resolve():
            return True
    return False
