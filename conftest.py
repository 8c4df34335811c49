"""Wires the conformance suite together: options, plugin loading, Hypothesis profiles,
parametrization by implementation x device x dtype, and the run summary."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

import impls
from reports import expectations

_SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", derandomize=True, max_examples=30, deadline=None, database=None,
                          print_blob=True, suppress_health_check=_SLOW_CHECKS)
settings.register_profile("dev", max_examples=60, deadline=None, print_blob=True,
                          suppress_health_check=_SLOW_CHECKS)
settings.register_profile("fuzz", max_examples=5_000, deadline=None, print_blob=True,
                          database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
                          suppress_health_check=_SLOW_CHECKS)
settings.load_profile(os.environ.get("CONVT_PROFILE", "ci"))  # --hypothesis-profile overrides


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("convt-conformance")
    group.addoption("--impl-module", action="append", default=[], metavar="PATH_OR_MODULE",
                    help="import a plugin module (file path or dotted name) that registers implementations")
    group.addoption("--impl", action="append", default=[], metavar="NAME",
                    help="check only this implementation (repeatable; default: all available)")
    group.addoption("--device", action="append", default=[], metavar="DEVICE",
                    help="check only on this device (repeatable: cpu, cuda)")
    group.addoption("--dtype", action="append", default=[], metavar="DTYPE",
                    help="check only this dtype (repeatable)")
    group.addoption("--expectations", default=str(expectations.DEFAULT_PATH), metavar="TOML",
                    help="known-discrepancy rules (default: reports/expectations.toml)")


def pytest_configure(config: pytest.Config) -> None:
    from suites import harness

    try:
        for module in config.getoption("impl_module"):
            impls.load_plugin(module)
        selected = impls.select(config.getoption("impl"))
        harness.set_rules(expectations.load_rules(config.getoption("expectations")))
    except (impls.PluginError, impls.RegistryError, expectations.ExpectationsError) as exc:
        raise pytest.UsageError(str(exc)) from None
    for name, values, known in (("--dtype", config.getoption("dtype"), impls.spec.DTYPES),
                                ("--device", config.getoption("device"), impls.registry.KNOWN_DEVICES)):
        unknown = [v for v in values if v not in known]
        if unknown:
            raise pytest.UsageError(f"unknown {name} {', '.join(unknown)}; known: {', '.join(known)}")
    config.stash[_SELECTED] = selected


_SELECTED = pytest.StashKey[list]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames or not metafunc.module.__name__.startswith("suites."):
        return
    from suites.harness import Case

    config = metafunc.config
    devices, dtypes = config.getoption("device"), config.getoption("dtype")
    params = []
    for impl in config.stash[_SELECTED]:
        for device in impl.devices:
            if devices and device not in devices:
                continue
            reason = impls.registry.device_unavailable_reason(device)
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            for dtype in impl.dtypes:
                if not dtypes or dtype in dtypes:
                    case = Case(impl, device, dtype)
                    params.append(pytest.param(case, id=case.id, marks=marks))
    metafunc.parametrize("case", params)


# -- the run summary (pytest-xdist workers send their tallies to the controller) -----------------
def pytest_sessionfinish(session: pytest.Session) -> None:
    from suites.harness import TALLY

    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["convt_tally"] = TALLY.as_dict()


def pytest_testnodedown(node, error) -> None:
    from suites.harness import TALLY

    TALLY.merge(getattr(node, "workeroutput", {}).get("convt_tally", {}))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    from suites.harness import RULES, TALLY

    if not TALLY.examples:
        return
    write = terminalreporter.write_line
    terminalreporter.section("convt-conformance summary")
    write(f"{'implementation':26} {'check':18} {'examples':>9} {'failed':>7} {'known':>6}")
    for impl, check in sorted(set(TALLY.examples) | set(TALLY.failed) | set(TALLY.known)):
        key = (impl, check)
        write(f"{impl:26} {check:18} {TALLY.examples[key]:9} {TALLY.failed[key]:7} {TALLY.known[key]:6}")
    write("")
    write("bug-prone regions hit (examples):")
    for region, count in sorted(TALLY.regions.items(), key=lambda item: -item[1]):
        write(f"  {count:8}  {region}")
    for rule in RULES:
        if TALLY.rules_matched.get(rule.id):
            write(f"known discrepancy {rule.id!r} matched {TALLY.rules_matched[rule.id]} time(s): {rule.reason}")
    impls_run = {impl for impl, _ in TALLY.examples}
    for rule in expectations.stale(RULES, set(TALLY.rules_matched), impls_run, TALLY.checks_run()):
        write(f"stale expectation {rule.id!r}: matched nothing although {'/'.join(rule.impl)} x "
              f"{'/'.join(rule.check)} ran")
