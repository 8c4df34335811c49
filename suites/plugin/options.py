"""Command-line options, and the run object each pytest process builds from them at configure time."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
import torch

import impls
from reports import expectations
from reports.records import RECORD_GLOB, REPORT_NAME, TALLY_GLOB, RecordWriter

from ..containment import DEFAULT_CALL_TIMEOUT, ContainedCall, contained, trusted_in_process
from ..corpus import SEED_CORPUS, gaps, load_corpus
from ..environment import environment, machine_facts
from ..run import DEFAULT_HANG_SHRINK_SECONDS, RUN_KEY, Run, run_of
from . import profiles

DEFAULT_REPORT_DIR = Path(__file__).resolve().parents[2] / "reports" / "out"
SUITES = Path(__file__).resolve().parents[1]


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
    group.addoption("--expectations", action="append", default=[], metavar="TOML",
                    help="known-discrepancy rules to add to the shipped reports/expectations.toml (repeatable)")
    group.addoption("--no-shipped-expectations", action="store_true",
                    help="do not load the shipped rules (only those given with --expectations)")
    group.addoption("--report-dir", default=str(DEFAULT_REPORT_DIR), metavar="DIR",
                    help="where records, report.json/.md/.html and new corpus entries go (default: reports/out)")
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
                    help="extra corpus folder of problems to replay first (repeatable; suites/corpus always)")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    profiles.apply_options(config)
    _share_the_cores(config)
    config.stash[RUN_KEY] = run = _build_run(config)
    if run.worker == "main" and run.writes_reports:  # the controller (or a run without xdist) starts afresh
        _clear_previous_run(run.report_dir)


def _share_the_cores(config: pytest.Config) -> None:
    """Give each xdist worker its share of the cores: every worker running torch's default thread count
    (all cores) oversubscribes the machine, and OpenMP's waiting threads then slow small kernels ~20x."""
    threads = config.getoption("torch_threads")
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    if threads is None and workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
    if threads is not None:
        if threads < 1:
            raise pytest.UsageError(f"--torch-threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)


def _build_run(config: pytest.Config) -> Run:
    """The run, from the options; bad options and plugins are one-line usage errors."""
    for name, values, known in (("--dtype", config.getoption("dtype"), impls.spec.DTYPES),
                                ("--device", config.getoption("device"), impls.registry.KNOWN_DEVICES)):
        unknown = [v for v in values if v not in known]
        if unknown:
            raise pytest.UsageError(f"unknown {name} {', '.join(unknown)}; known: {', '.join(known)}")
    if config.getoption("shard"):
        parse_shard(config.getoption("shard"))
    try:
        specs = config.getoption("impl_module")
        if not hasattr(config, "workerinput"):  # the controller probed them for its xdist workers
            impls.probe_plugins(specs)
        plugins = [impls.load_plugin(module) for module in specs]
        selected = impls.select(config.getoption("impl"), plugins)
        rules = expectations.in_force(expectations.load_all(
            config.getoption("expectations"), shipped=not config.getoption("no_shipped_expectations")), machine_facts())
    except (impls.PluginError, impls.RegistryError, expectations.ExpectationsError) as exc:
        raise pytest.UsageError(str(exc)) from None
    report_dir = _writable(Path(config.getoption("report_dir")))
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    directories = [SEED_CORPUS, report_dir / "corpus"] + [Path(d) for d in config.getoption("corpus")]
    corpus, problems = load_corpus(directories)
    versions = {impl.name: str(impl.extra["version"]) for impl in selected if "version" in impl.extra}
    spec_of = dict(zip(plugins, specs))
    return Run(rules=rules, implementations=[_contained(impl, config, spec_of) for impl in selected],
               report_dir=report_dir,
               writer=RecordWriter(report_dir, worker), worker=worker, corpus=corpus, problems=problems + gaps(corpus),
               plugin_modules=tuple(config.getoption("impl_module")), environment=environment(versions),
               writes_reports=_runs_the_suites(config),
               hang_shrink_seconds=config.getoption("hang_shrink_seconds"))


def _writable(report_dir: Path) -> Path:
    """The report folder, made if need be; one that cannot be written is a usage error, before any test runs."""
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        probe = report_dir / f".writable-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise pytest.UsageError(f"--report-dir {str(report_dir)!r}: cannot write there ({exc.strerror or exc})") \
            from None
    return report_dir


def _contained(impl: impls.Implementation, config: pytest.Config, spec_of: dict[str, str]) -> impls.Implementation:
    """The implementation, running in a worker process when --contain says so; the worker imports only
    the plugin that registered it (two plugins that cannot share a process never meet there)."""
    mode = config.getoption("contain")
    if mode == "none" or (mode == "plugins" and trusted_in_process(impl)):
        return impl
    own = [spec_of[impl.module]] if impl.module in spec_of else []
    return contained(impl, own, config.getoption("call_timeout"))


def _runs_the_suites(config: pytest.Config) -> bool:
    """Whether this session includes the conformance suites (and so writes reports)."""
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == SUITES or SUITES in path.parents or path in SUITES.parents:
            return True
    return False


def _clear_previous_run(report_dir: Path) -> None:
    # The previous run's documents go too: a run that finds and counts nothing must not show them.
    for pattern in (RECORD_GLOB, TALLY_GLOB, "progress-*.json", REPORT_NAME, "report.md", "report.html"):
        for path in report_dir.glob(pattern):
            path.unlink()


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise pytest.UsageError(f"--shard {text!r}: expected I/N, e.g. 2/4") from None
    if not 1 <= index <= count:
        raise pytest.UsageError(f"--shard {text!r}: I must be between 1 and N")
    return index, count


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze the objects alive once the tests are collected (torch, Hypothesis, the frameworks: some
    300,000 that live as long as the process) out of the garbage collector's way. Its full passes walk
    every one of them, 0.1-0.2 s each, whenever the survivors of younger passes have grown by a quarter:
    each such pass stalled one example for as long as a hundred or more others took."""
    gc.freeze()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave no worker process of a contained implementation behind, and hand the frozen objects back to
    the collector (the project's own tests run several sessions in one process)."""
    gc.unfreeze()
    if RUN_KEY in config.stash:
        run = run_of(config)
        for impl in run.implementations + list(run.crash_contained.values()):
            if isinstance(impl.fn, ContainedCall):
                impl.fn.close()
