"""The run each pytest process builds at configure time from the options, and what it hands back when the
session ends (worker processes, frozen objects, the torch thread count it set)."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest
import torch

from convt_conformance import impls, spec
from convt_conformance.reports import expectations, files
from convt_conformance.reports.records import RecordWriter

from ..containment import ContainedCall, contained, trusted_in_process
from ..corpus import SEED_CORPUS, gaps, load_corpus
from ..environment import environment, machine_facts, provenance
from ..limits import GATE_CAPS, SCALE_CAPS
from ..run import RUN_KEY, Run, run_of
from ..sizes import stated_caps
from . import profiles
from .options import SessionStart


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    _share_the_cores(config)
    config.stash[RUN_KEY] = run = _build_run(config)
    if run.worker == "main":  # the controller (or a run without xdist) starts afresh
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
        before = torch.get_num_threads()
        config.add_cleanup(lambda: torch.set_num_threads(before))
        torch.set_num_threads(threads)


def _build_run(config: pytest.Config) -> Run:
    """The run, from the options; bad options and plugins are one-line usage errors."""
    for name, values, known in (("--dtype", config.getoption("dtype"), spec.DTYPES),
                                ("--device", config.getoption("device"), impls.registry.KNOWN_DEVICES)):
        unknown = [v for v in values if v not in known]
        if unknown:
            raise pytest.UsageError(f"unknown {name} {', '.join(unknown)}; known: {', '.join(known)}")
    if config.getoption("shard"):
        parse_shard(config.getoption("shard"))
    try:
        specs = list(dict.fromkeys(config.getoption("impl_module") + impls.registry.adapter_modules()))
        if not hasattr(config, "workerinput"):  # the controller probed them for its xdist workers
            impls.probe_plugins(specs)
        plugins = [impls.load_plugin(module) for module in specs]
        started = config.pluginmanager.get_plugin(SessionStart.name)
        ambient = impls.registry.modules_registered_since(started.stamp) if started else []
        selected = impls.select(config.getoption("impl"), plugins + ambient)
        loaded = expectations.load_all(config.getoption("expectations"),
                                       shipped=not config.getoption("no_shipped_expectations"))
        rules = expectations.inherit(expectations.in_force(loaded, machine_facts()),
                                     {impl.name: impl.built_on for impl in selected if impl.built_on})
        gate_settings = profiles.gate_settings(config)
    except (impls.PluginError, impls.RegistryError, expectations.ExpectationsError) as exc:
        raise pytest.UsageError(str(exc)) from None
    report_dir = _writable(config.invocation_params.dir / config.getoption("report_dir"))
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    directories = [SEED_CORPUS, report_dir / files.CORPUS_DIR] + [Path(d) for d in config.getoption("corpus")]
    corpus, unreadable = load_corpus(directories)
    versions = {impl.name: str(impl.extra["version"]) for impl in selected if "version" in impl.extra}
    caps = SCALE_CAPS if config.getoption("convt_profile") == "scale" else GATE_CAPS
    devices = sorted({device for impl in selected for device in impl.devices
                      if impls.registry.device_unavailable_reason(device) is None})
    # a worker imports what registered its implementation: a plugin as given, a conftest (or what it imports) by file
    spec_of = {**{module: _file_of(module) for module in ambient}, **dict(zip(plugins, specs))}
    return Run(rules=rules, implementations=[_contained(impl, config, spec_of) for impl in selected],
               report_dir=report_dir, settings=gate_settings,
               writer=RecordWriter(report_dir, worker), worker=worker, corpus=corpus,
               notices=unreadable + gaps(corpus) + declared_gaps(selected),
               plugin_modules=tuple(config.getoption("impl_module")),
               environment={**environment(versions), **provenance(config.getoption("convt_profile"),
                                                                  config.getoption("hypothesis_seed", None)),
                            **stated_caps(devices, caps)},
               caps=caps,
               hang_shrink_seconds=config.getoption("hang_shrink_seconds"))


def declared_gaps(selected: list) -> list[str]:
    """What the implementations' declarations leave unchecked, said once per run."""
    return [f"{impl.name}: special-values not checked (it declares special_values=False: IEEE inf/NaN semantics "
            f"not claimed)" for impl in selected if not impl.special_values]


def _file_of(module: str) -> str:
    found = sys.modules.get(module)
    return getattr(found, "__file__", None) or module


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


def _clear_previous_run(report_dir: Path) -> None:
    # The previous run's documents go too: a run that finds and counts nothing must not show them.
    for pattern in files.RUN_OUTPUTS:
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
