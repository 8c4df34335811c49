"""Parametrization: every selected implementation x device x dtype as a ``case``; the corpus replay
as case x entry; the catalog as case x layer; the run as the ``conformance_run`` fixture; corpus first,
then this shard's tests."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from convt_conformance import impls

from .. import catalog
from ..case import Case
from ..containment import ContainedCall, WorkerUnavailable, contained
from ..corpus import Entry, replayable
from ..limits import CORPUS_COMPILE_BUDGET
from ..run import Run, run_of
from . import SUITES
from .setup import parse_shard

CORPUS_TESTS = "test_corpus"


def gate_test(item_or_metafunc) -> str | None:
    """``test_checks`` or ``test_corpus`` for the gate's own test modules, else None. Known by file, not by
    module name: pytest names a test module after the folders it sits in (``suites.test_checks`` in a
    checkout, ``convt_conformance.suites.test_checks`` installed)."""
    path = Path(getattr(item_or_metafunc.module, "__file__", None) or ".").resolve()
    return path.stem if path.parent == SUITES else None


@pytest.fixture(scope="session")
def conformance_run(request: pytest.FixtureRequest) -> Run:
    """The run this test takes part in (counts, rules, where records go)."""
    return run_of(request.config)


def cases(config: pytest.Config) -> Iterator[tuple[Case, str | None]]:
    """Every (implementation, device, dtype) selected, with the reason when the device is missing."""
    devices, dtypes = config.getoption("device"), config.getoption("dtype")
    for impl in run_of(config).implementations:
        for device in impl.devices:
            if devices and device not in devices:
                continue
            reason = impls.registry.device_unavailable_reason(device)
            for dtype in impl.dtypes:
                if not dtypes or dtype in dtypes:
                    yield Case(_for_case(config, impl, device, dtype), device, dtype, run_of(config).caps), reason


def _for_case(config: pytest.Config, impl: impls.Implementation, device: str, dtype: str) -> impls.Implementation:
    """``impl``, or its contained twin where it runs in-process under ``--contain plugins`` and a rule
    declares that it crashes in this device and dtype: in-process, the crash it is known for would end
    the run instead of matching the rule."""
    run = run_of(config)
    if config.getoption("contain") != "plugins" or isinstance(impl.fn, ContainedCall):
        return impl
    if not any(rule.covers(impl.name, "crash", device, dtype) for rule in run.rules):
        return impl
    if impl.name not in run.crash_contained:
        run.crash_contained[impl.name] = contained(impl, [], config.getoption("call_timeout"))
    return run.crash_contained[impl.name]


def replayed_on(case: Case, run: Run) -> list[Entry]:
    """The corpus entries replayed on ``case``: every one some check of it applies to, or, for an
    implementation that compiles per shape, the first CORPUS_COMPILE_BUDGET of them (the shipped corpus of
    historical bugs comes first)."""
    entries = [entry for entry in run.corpus
               if any(replayable(case, entry, check) is None for check in entry.checks)]
    return entries[:CORPUS_COMPILE_BUDGET] if case.impl.fixed_geometries == 1 else entries


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames or gate_test(metafunc) is None:
        return
    config = metafunc.config
    if "catalog_entry" in metafunc.fixturenames:
        scale = config.getoption("convt_profile") == "scale"
        params = [pytest.param(case, entry, id=f"{case.id}-{entry.id}") for case, reason in cases(config)
                  if reason is None for entry in catalog.entries(scale, case.impl.fixed_geometries == 1)
                  if entry.dims in case.impl.dims]
        metafunc.parametrize("case, catalog_entry", params)
        return
    if "corpus_entry" in metafunc.fixturenames:
        params = [pytest.param(case, entry, id=f"{case.id}-{entry.id}")
                  for case, reason in cases(config) if reason is None for entry in replayed_on(case, run_of(config))]
        metafunc.parametrize("case, corpus_entry", params)
        return
    metafunc.parametrize("case", [pytest.param(case, id=case.id, marks=[pytest.mark.skip(reason=reason)] if reason
                                               else []) for case, reason in cases(config)])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Give every case its own Hypothesis database key and derandomized seed, and the gate's settings.
    Hypothesis keys tests by ``@pytest.mark.parametrize`` only; these tests are parametrized by the hook
    above, and without this every implementation and dtype would be checked on the same problems. The
    settings are the run's (``--convt-profile``), set on the gate's tests alone rather than loaded as
    the process-wide profile a user's other tests would inherit."""
    inner = getattr(getattr(item.obj, "hypothesis", None), "inner_test", None)
    module = gate_test(item)
    if inner is not None and module is not None:
        inner._hypothesis_internal_add_digest = f"{module}::{item.name}".encode()  # wherever installed
        item.obj._hypothesis_internal_use_settings = run_of(item.config).settings


def _case_of(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("case") if callspec is not None and gate_test(item) is not None else None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """An implementation no worker could be started for is not run again: its other tests are skipped."""
    case = _case_of(item)
    fault = case and run_of(item.config).unstartable.get(case.impl.name)
    if fault:
        pytest.skip(f"{case.impl.name}: no worker process could be started (a harness fault, reported once)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """A worker that cannot be started is the harness's fault, not the implementation's: the test fails with
    that one line (no record, no finding), and the run says so once."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(WorkerUnavailable):
        run, case = run_of(item.config), _case_of(item)
        message = str(call.excinfo.value)
        if case is not None and case.impl.name not in run.unstartable:
            run.unstartable[case.impl.name] = message
            run.notices.append(f"harness fault, not a finding: {message}")
        report.longrepr = f"harness fault, not a finding: {message}"
    return report


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Replay the corpus first (known bugs fail fast); keep this shard's tests."""
    items.sort(key=lambda item: 0 if gate_test(item) == CORPUS_TESTS else 1)
    shard = config.getoption("shard")
    if shard:
        index, count = parse_shard(shard)
        keep = [item for item in items if zlib.crc32(item.nodeid.encode()) % count == index - 1]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
