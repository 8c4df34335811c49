"""Wires the conformance suite together: options, plugin loading, Hypothesis profiles,
parametrization by implementation x device x dtype, and the run summary."""

from __future__ import annotations

import dataclasses
import os
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

import impls
from reports import expectations
from suites import campaign
from suites.containment import DEFAULT_CALL_TIMEOUT, ContainedCall

DEFAULT_REPORT_DIR = Path(__file__).parent / "reports" / "out"

_SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", derandomize=True, max_examples=30, deadline=None, database=None,
                          print_blob=True, suppress_health_check=_SLOW_CHECKS)
settings.register_profile("dev", max_examples=60, deadline=None, print_blob=True,
                          suppress_health_check=_SLOW_CHECKS)
settings.register_profile("soak", max_examples=int(os.environ.get("CONVT_SOAK_EXAMPLES", "400")), deadline=None,
                          database=None, print_blob=True, suppress_health_check=_SLOW_CHECKS)
settings.register_profile("replay", phases=[Phase.explicit, Phase.reuse, Phase.shrink], deadline=None,
                          print_blob=True, suppress_health_check=_SLOW_CHECKS)
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
    group.addoption("--report-dir", default=str(DEFAULT_REPORT_DIR), metavar="DIR",
                    help="where records, report.json/.md/.html and new corpus entries go (default: reports/out)")
    group.addoption("--contain", choices=("plugins", "all", "none"), default="plugins",
                    help="run implementations in worker processes, so crashes and hangs become findings "
                         "(default: plugins, i.e. plugin modules and the third-party framework adapters)")
    group.addoption("--call-timeout", type=float, default=DEFAULT_CALL_TIMEOUT, metavar="SECONDS",
                    help=f"per-call time limit of a contained implementation (default {DEFAULT_CALL_TIMEOUT:g})")
    group.addoption("--fuzz-seconds", type=float, default=None, metavar="SECONDS",
                    help="a fuzz campaign: random seeds, every test a slice of this wall-clock budget, ending on time")
    group.addoption("--shard", default=None, metavar="I/N",
                    help="run only shard I of N (1-based): N machines get disjoint tests")
    group.addoption("--example-db", default=None, metavar="URL_OR_DIR",
                    help="Hypothesis example database: redis://HOST:PORT/DB (shared between machines) or a folder")
    group.addoption("--corpus", action="append", default=[], metavar="DIR",
                    help="extra corpus folder of problems to replay first (repeatable; suites/corpus always)")


@pytest.hookimpl(trylast=True)  # after Hypothesis has loaded --hypothesis-profile
def pytest_configure(config: pytest.Config) -> None:
    from reports.records import RecordWriter
    from suites import harness
    from suites.environment import environment

    try:
        for module in config.getoption("impl_module"):
            impls.load_plugin(module)
        selected = impls.select(config.getoption("impl"))
        harness.RUN.rules = expectations.load_rules(config.getoption("expectations"))
    except (impls.PluginError, impls.RegistryError, expectations.ExpectationsError) as exc:
        raise pytest.UsageError(str(exc)) from None
    report_dir = Path(config.getoption("report_dir"))
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    _configure_hypothesis(config)
    config.stash[_IS_GATE] = _runs_the_suites(config)
    if worker == "main" and config.stash[_IS_GATE]:  # the controller (or a run without xdist) starts afresh
        _clear_previous_run(report_dir)
    harness.RUN.writer = RecordWriter(report_dir, worker)
    harness.RUN.corpus_dir = str(report_dir / "corpus")
    harness.RUN.plugin_modules = tuple(config.getoption("impl_module"))
    harness.RUN.environment = environment()
    harness.RUN.progress_path = report_dir / f"progress-{worker}.json"
    seconds = config.getoption("fuzz_seconds")
    if seconds:
        campaign.install_interrupt_guard()
    if seconds and worker == "main":
        os.environ.setdefault(campaign.DEADLINE_VARIABLE, str(time.time() + seconds))
        parallel = bool(getattr(config.option, "numprocesses", None))
        snapshot = (lambda: campaign.read_snapshots(report_dir)) if parallel else harness.RUN.tally.to_tally
        config.stash[_PROGRESS] = campaign.Progress(seconds, snapshot)
        config.stash[_PROGRESS].start()
    for name, values, known in (("--dtype", config.getoption("dtype"), impls.spec.DTYPES),
                                ("--device", config.getoption("device"), impls.registry.KNOWN_DEVICES)):
        unknown = [v for v in values if v not in known]
        if unknown:
            raise pytest.UsageError(f"unknown {name} {', '.join(unknown)}; known: {', '.join(known)}")
    config.stash[_SELECTED] = [_contained(impl, config) for impl in selected]
    from suites.checks import CHECKS
    from suites.corpus import SEED_CORPUS, gaps, load_corpus

    directories = [SEED_CORPUS, report_dir / "corpus"] + [Path(d) for d in config.getoption("corpus")]
    entries, problems = load_corpus(directories, set(CHECKS))
    config.stash[_CORPUS], config.stash[_CORPUS_PROBLEMS] = entries, problems + gaps(entries)


_SELECTED = pytest.StashKey[list]()
_CORPUS = pytest.StashKey[list]()
_IS_GATE = pytest.StashKey[bool]()
_PROGRESS = pytest.StashKey[campaign.Progress]()  # whether this session runs the suites (not only the harness's tests)
_CORPUS_PROBLEMS = pytest.StashKey[list]()


def _configure_hypothesis(config: pytest.Config) -> None:
    """Apply --example-db and campaign settings on top of the loaded profile."""
    changes = {}
    url = config.getoption("example_db")
    if url:
        changes["database"] = _example_database(url)
    if config.getoption("fuzz_seconds"):
        if config.getoption("hypothesis_profile", None) is None:
            settings.load_profile("fuzz")
        changes.update(max_examples=10**9, derandomize=False)  # the clock, not a count, ends a campaign
    if changes:
        settings.register_profile("convt-active", settings(settings.default, **changes))
        settings.load_profile("convt-active")
    shard = config.getoption("shard")
    if shard:
        _parse_shard(shard)


def _example_database(url: str):
    if url.startswith("redis://"):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase

            client = redis.Redis.from_url(url)
            client.ping()
        except ImportError:
            raise pytest.UsageError(f"--example-db {url}: needs the redis package (pip install redis)") from None
        except Exception as exc:  # noqa: BLE001  (any connection failure: one line)
            raise pytest.UsageError(f"--example-db {url}: cannot reach the Redis server ({exc})") from None
        return RedisExampleDatabase(client)
    return DirectoryBasedExampleDatabase(url)


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise pytest.UsageError(f"--shard {text!r}: expected I/N, e.g. 2/4") from None
    if not 1 <= index <= count:
        raise pytest.UsageError(f"--shard {text!r}: I must be between 1 and N")
    return index, count


def _contained(impl: impls.Implementation, config: pytest.Config) -> impls.Implementation:
    """The implementation, running in a worker process when --contain says so."""
    mode = config.getoption("contain")
    # Third-party frameworks run contained like plugins: their native code can abort the process.
    own = impl.source.startswith(str(Path(impls.__file__).parent)) and not impl.extra.get("third_party")
    if mode == "none" or (mode == "plugins" and own):
        return impl
    call = ContainedCall(impl.name, config.getoption("impl_module"), config.getoption("call_timeout"))
    return dataclasses.replace(impl, fn=call)


def _clear_previous_run(report_dir: Path) -> None:
    from reports.records import RECORD_GLOB, REPORT_NAME, TALLY_GLOB

    # The previous run's documents go too: a run that finds and counts nothing must not show them.
    for pattern in (RECORD_GLOB, TALLY_GLOB, "progress-*.json", REPORT_NAME, "report.md", "report.html"):
        for path in report_dir.glob(pattern):
            path.unlink()


def _cases(config: pytest.Config):
    """Every (implementation, device, dtype) selected, with the reason when the device is missing."""
    from suites.harness import Case

    devices, dtypes = config.getoption("device"), config.getoption("dtype")
    for impl in config.stash[_SELECTED]:
        for device in impl.devices:
            if devices and device not in devices:
                continue
            reason = impls.registry.device_unavailable_reason(device)
            for dtype in impl.dtypes:
                if not dtypes or dtype in dtypes:
                    yield Case(impl, device, dtype), reason


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames or not metafunc.module.__name__.startswith("suites."):
        return
    config = metafunc.config
    if "corpus_entry" in metafunc.fixturenames:
        from suites.test_corpus import replayable

        params = [pytest.param(case, entry, id=f"{case.id}-{entry.id}")
                  for case, reason in _cases(config) if reason is None
                  for entry in config.stash[_CORPUS]
                  if (not entry.dtypes or case.dtype_name in entry.dtypes)
                  and any(replayable(case, entry, check)[0] for check in entry.checks)]
        metafunc.parametrize("case, corpus_entry", params)
        return
    metafunc.parametrize("case", [pytest.param(case, id=case.id, marks=[pytest.mark.skip(reason=reason)] if reason
                                               else []) for case, reason in _cases(config)])


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected: campaign slices go to the tests that run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Replay the corpus first (known bugs fail fast); keep this shard's tests; size campaign slices."""
    items.sort(key=lambda item: 0 if item.module.__name__ == "suites.test_corpus" else 1)
    shard = config.getoption("shard")
    if shard:
        index, count = _parse_shard(shard)
        keep = [item for item in items if zlib.crc32(item.nodeid.encode()) % count == index - 1]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
    seconds = config.getoption("fuzz_seconds")
    if seconds:  # campaigns hunt for new bugs; the gate replays the corpus
        replays = [item for item in items if item.module.__name__ == "suites.test_corpus"]
        config.hook.pytest_deselected(items=replays)
        items[:] = [item for item in items if item not in replays]
        runnable = [item for item in items if not item.get_closest_marker("skip")]
        workers = getattr(config, "workerinput", {}).get("workercount", 1)
        campaign.configure(seconds, len(runnable), workers)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if campaign.INTERRUPTED.is_set():
        raise KeyboardInterrupt
    if campaign.BUDGET is not None:
        if campaign.BUDGET.over():
            pytest.skip(campaign.NOT_REACHED)
        campaign.BUDGET.start_test()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """A test that ended because its campaign slice was spent passed for the time it had."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and campaign.SKIP_REASON in str(report.longrepr):
        report.outcome = "passed"
        report.longrepr = None


def _is_full_run(config: pytest.Config) -> bool:
    """Whether nothing narrowed the run below its implementations (stale rules mean something then)."""
    return not (config.getoption("keyword") or config.getoption("markexpr") or config.getoption("dtype")
                or config.getoption("device"))


def _stale_rules(config: pytest.Config) -> list:
    from suites.harness import RUN

    if not _is_full_run(config):
        return []
    return expectations.stale(RUN.rules, set(RUN.tally.rules_matched), {i for i, _ in RUN.tally.examples},
                              RUN.tally.checks_run() | IMPLIED_CHECKS)


def _runs_the_suites(config: pytest.Config) -> bool:
    """Whether this session includes the conformance suites (and so writes reports)."""
    suites = Path(__file__).parent / "suites"
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == suites or suites in path.parents or path in suites.parents:
            return True
    return False


# -- the run summary (pytest-xdist workers send their tallies to the controller) -----------------
def pytest_sessionfinish(session: pytest.Session) -> None:
    from reports.records import RECORD_GLOB, merge, write_json
    from reports.render import write_documents
    from suites.harness import RUN

    config = session.config
    if _PROGRESS in config.stash:
        config.stash[_PROGRESS].close()
    report_dir = Path(config.getoption("report_dir"))
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is not None:
        config.workeroutput["convt_tally"] = RUN.tally.to_tally()
        return
    found = any(report_dir.glob(RECORD_GLOB))  # a finding cut off while shrinking counts no example
    if not config.stash.get(_IS_GATE, False) or not (RUN.tally.examples or found):
        return
    write_json(report_dir / "tally-main.json", RUN.tally.to_tally())
    stale = _stale_rules(config)
    report, problems = merge(report_dir, {
        "environment": RUN.environment, "exit_status": int(session.exitstatus),
        "stale_rules": [{"id": r.id, "reason": r.reason} for r in stale],
        "rules": {r.id: {"reason": r.reason, "link": r.link} for r in RUN.rules},
        "profile": config.getoption("hypothesis_profile", None) or os.environ.get("CONVT_PROFILE", "ci")})
    try:
        write_documents(report, report_dir)
    except Exception as exc:  # noqa: BLE001  (report.json is written; the documents can be redone)
        problems.append(f"report.md/report.html not written ({type(exc).__name__}: {exc}); "
                        f"retry with: python -m reports render {report_dir / 'report.json'}")
    config.stash[_REPORT_PROBLEMS] = problems
    if report["summary"]["verdict"] == "fail" and session.exitstatus == pytest.ExitCode.OK:
        # Every unexpected discrepancy fails the run, however its test ended (a campaign's clock may
        # have cut its shrinking short, and the test then passed for the time it had).
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_REPORT_PROBLEMS = pytest.StashKey[list]()
# Every test also checks that a valid problem is accepted; the bound test also runs the statistical tier.
IMPLIED_CHECKS = {"valid-refused", "statistical", "crash", "timeout"}


def pytest_testnodedown(node, error) -> None:
    from suites.harness import RUN

    RUN.tally.add(getattr(node, "workeroutput", {}).get("convt_tally", {}))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    from suites.checks import VALUE_CHECKS
    from suites.harness import RUN

    tally = RUN.tally
    report_dir = Path(config.getoption("report_dir"))
    if hasattr(config, "workerinput") or not config.stash.get(_IS_GATE, False) or not (
            tally.examples or (report_dir / "report.json").exists()):
        return
    write = terminalreporter.write_line
    terminalreporter.section("convt-conformance summary")
    write(f"{'implementation':30} {'check':18} {'examples':>9} {'failed':>7} {'known':>6}")
    for row in tally.as_dict()["table"]:
        write(f"{row['impl']:30} {row['check']:18} {row['examples']:9} {row['failed']:7} {row['known']:6}")
    write("")
    write("bug-prone regions: examples checked there, all checks and per value check")
    write(f"  {'all':>8} " + " ".join(f"{check:>8}" for check in VALUE_CHECKS))
    for region, count in sorted(tally.regions.items(), key=lambda item: -item[1]):
        per_check = " ".join(f"{tally.evaluated.get(f'{check}: {region}', 0):8}" for check in VALUE_CHECKS)
        write(f"  {count:8} {per_check}  {region}")
    for rule in RUN.rules:
        if tally.rules_matched.get(rule.id):
            write(f"known discrepancy {rule.id!r} matched {tally.rules_matched[rule.id]} time(s)")
    for rule in _stale_rules(config):
        write(f"stale expectation {rule.id!r}: matched nothing although {'/'.join(rule.impl)} x "
              f"{'/'.join(rule.check)} ran")
    for problem in config.stash.get(_CORPUS_PROBLEMS, []) + config.stash.get(_REPORT_PROBLEMS, []):
        write(f"report: {problem}")
    if (report_dir / "report.json").exists():
        write(f"reports: {report_dir / 'report.json'}, report.md, report.html")
