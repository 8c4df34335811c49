"""Harness throughput: examples per second on one core for each oracle on the default problem
distribution, in-process and contained (the implementation in a warm worker process, as plugins run),
where the time of an example goes (drawing it with Hypothesis, the implementation's call, the harness's
own work: values, float64 reference quantities, comparison); the shape, exact and bound oracles on
small problems (the same draws with the work cap lowered to ``--small-cap`` output elements, where
the harness's own cost is what is left); the third-party frameworks beside a built-in; and campaign
throughput from 1 worker to every core. Each rate is the best of ``--repeats`` runs (the machine is
shared: the best run is the least disturbed one); in-process and contained runs take turns.

    python benchmarks/throughput.py [--impl im2col] [--examples 300] [--repeats 5] [--campaign-seconds 30]
                                    [--small-cap 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.internal.entropy import deterministic_PRNG  # the engine's own, as it runs each example

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from convt_conformance import impls  # noqa: E402
from convt_conformance.suites import strategies  # noqa: E402
from convt_conformance.suites.all_checks import CHECKS  # noqa: E402
from convt_conformance.suites.case import Case  # noqa: E402
from convt_conformance.suites.checks import Untrusted, prepared_ahead, run_on  # noqa: E402
from convt_conformance.suites.containment import contained  # noqa: E402
from convt_conformance.suites.environment import cpu_name  # noqa: E402
from convt_conformance.suites.problem import Problem  # noqa: E402


class Rate(NamedTuple):
    per_second: float  # examples per second
    drawing: float  # ms per example outside the test body: Hypothesis drawing the problem
    calling: float  # ms per example inside the implementation
    harness: float  # ms per example of the harness's own work in the test body

    @property
    def outside(self) -> float:
        """The share of the time not spent in the implementation."""
        total = self.drawing + self.calling + self.harness
        return 1 - self.calling / total if total else 0.0


def measured(examples: int) -> settings:
    """The settings of every measured run: ``examples`` derandomized examples, nothing saved, no deadline."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


def per_oracle(impl: impls.Implementation, check: str, examples: int) -> Rate:
    """How fast one oracle runs on ``impl``, and where its time goes."""
    inside, body, count = [0.0], [0.0], [0]

    def timed_call(fn, *args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - start

    def timed(*args, **kwargs):
        return timed_call(impl.fn, *args, **kwargs)

    if hasattr(impl.fn, "each"):  # a contained implementation: checks that call twice use one round trip
        timed.each = lambda calls: timed_call(impl.fn.each, calls)
    if hasattr(impl.fn, "attempts"):  # and an example's invalid problems are called in one (see prepared_ahead)
        timed.attempts = lambda calls: timed_call(impl.fn.attempts, calls)

    case = Case(dataclasses.replace(impl, fn=timed), "cpu", "float32")

    @measured(examples)
    @given(CHECKS[check].draws(case))
    def run(problems):
        start = time.perf_counter()
        count[0] += 1
        for problem, prepared in zip(problems, prepared_ahead(case, problems, check)):
            try:
                run_on(case, problem, check, prepared)
            except Untrusted:
                pass
        body[0] += time.perf_counter() - start

    start = time.perf_counter()
    run()
    total = time.perf_counter() - start
    ms = 1000 / count[0]
    return Rate(count[0] / total, (total - body[0]) * ms, inside[0] * ms, (body[0] - inside[0]) * ms)


def best(impl: impls.Implementation, check: str, examples: int, repeats: int) -> Rate:
    return max((per_oracle(impl, check, examples) for _ in range(repeats)), key=lambda rate: rate.per_second)


def best_side_by_side(impl: impls.Implementation, boxed: impls.Implementation, check: str, examples: int,
                      repeats: int) -> tuple[Rate, Rate]:
    """The best in-process and the best contained run, taken in turns: a ratio of two rates measured
    minutes apart carried the machine's drift (the same oracle gave 75% and 88% an hour apart)."""
    runs = [(per_oracle(impl, check, examples), per_oracle(boxed, check, examples)) for _ in range(repeats)]
    return tuple(max(side, key=lambda rate: rate.per_second) for side in zip(*runs))


def campaign(workers: int, seconds: float, impl: str) -> float:
    """Examples per second of a campaign with this many workers."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "convt_conformance", "fuzz", "--seconds", str(seconds),
                        "--workers", str(workers), "--impl", impl, "--report-dir", out],
                       cwd=ROOT, capture_output=True, check=False)
        report = json.loads((Path(out) / "report.json").read_text())
    return sum(row["examples"] for row in report["summary"]["table"]) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", default="im2col")
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--campaign-seconds", type=float, default=30)
    parser.add_argument("--small-cap", type=int, default=1000, help="output elements at most, for small problems")
    args = parser.parse_args()
    torch.set_num_threads(1)
    impl = impls.get(args.impl)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}; implementation {impl.name}, "
          f"float32, one thread; best of {args.repeats} runs of {args.examples} examples")
    boxed = contained(impl, [])
    per_oracle(boxed, "shape", 5)  # start its worker: a run starts it once per implementation and process
    full_collections(impl, args.examples, 2 * args.repeats)  # ends with the objects frozen, as the gate runs
    print("\n| oracle | examples/s in-process (one core) | drawing ms | implementation ms | harness ms | "
          "time outside the implementation | examples/s contained | contained / in-process |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for check in ("shape", "exact", "bound", "adjoint", "invalid-accepted", "valid-refused", "inputs-unmodified",
                  "layout", "special-values", "determinism"):
        rate, boxed_rate = best_side_by_side(impl, boxed, check, args.examples, args.repeats)
        print(f"| {check} | {rate.per_second:.0f} | {rate.drawing:.2f} | {rate.calling:.2f} | {rate.harness:.2f} | "
              f"{rate.outside:.0%} | {boxed_rate.per_second:.0f} | {boxed_rate.per_second / rate.per_second:.0%} |",
              flush=True)
    contained_calls(impl, boxed)
    boxed.fn.close()
    small(impl, args.examples, args.repeats, args.small_cap)
    drawing_floor(impl, args.examples, args.repeats)
    frameworks(impl, args.examples, args.repeats)
    print("\n| campaign workers | examples/s |")
    print("|---:|---:|")
    for workers in range(1, (os.cpu_count() or 1) + 1):
        print(f"| {workers} | {campaign(workers, args.campaign_seconds, impl.name):.0f} |", flush=True)


def full_collections(impl: impls.Implementation, examples: int, repeats: int) -> None:
    """The bound oracle in-process before and after the objects alive are frozen out of the garbage
    collector's way (``gc.freeze``, as the gate does once its tests are collected): how many full
    collections the runs met, and what they cost. Leaves the objects frozen."""
    passes: list[float] = []
    started = [0.0]

    def timer(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                passes.append(time.perf_counter() - started[0])

    print("\n| bound oracle, in-process | runs | examples/s: best | worst | full collections | their seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    gc.callbacks.append(timer)
    try:
        for label in ("objects not frozen", "objects frozen once loaded (as the gate runs)"):
            if label.startswith("objects frozen"):
                gc.freeze()
            passes.clear()
            rates = [per_oracle(impl, "bound", examples).per_second for _ in range(repeats)]
            print(f"| {label} | {repeats} | {max(rates):.0f} | {min(rates):.0f} | {len(passes)} | {sum(passes):.2f} |",
                  flush=True)
    finally:
        gc.callbacks.remove(timer)


def contained_calls(impl: impls.Implementation, boxed: impls.Implementation, calls: int = 2000) -> None:
    """Microseconds a call on one small fixed problem (N=2, C=3->2, 5x4, k=3x3, stride (2, 1)), in-process
    and contained, answered and refused (stride 0): what containment adds to a call."""
    problem = Problem(input_shape=(2, 3, 5, 4), weight_shape=(3, 2, 3, 3), bias=True, stride=(2, 1),
                      padding=(1, 0), output_padding=(1, 0), dilation=(1, 1), groups=1, dtype="float32", seed=1)
    tensors, kwargs = problem.materialize(), problem.kwargs()
    print("\n| one call (fixed small problem) | in-process us | contained us | containment's own us |")
    print("|---|---:|---:|---:|")

    def per_call(fn: Any, arguments: dict, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            try:
                fn(*tensors, **arguments)
            except Exception:  # noqa: BLE001  (the refused row: the call raises every time)
                pass
        return (time.perf_counter() - start) / count * 1e6

    for label, arguments in (("answered", kwargs), ("refused (stride 0)", {**kwargs, "stride": (0, 1)})):
        per_call(boxed.fn, arguments, 200)
        inside = min(per_call(impl.fn, arguments, calls) for _ in range(3))
        boxed_us = min(per_call(boxed.fn, arguments, calls) for _ in range(3))
        print(f"| {label} | {inside:.0f} | {boxed_us:.0f} | {boxed_us - inside:.0f} |", flush=True)


def drawing_floor(impl: impls.Implementation, examples: int, repeats: int) -> None:
    """What drawing costs in Hypothesis' engine alone (the test does nothing): the bound oracle's problems
    beside flat tuples of integers, and the save and restore of the global random states (Python's,
    numpy's) that the engine makes around every example."""
    case = Case(impl, "cpu", "float32")

    def draw_only(strategy: st.SearchStrategy) -> float:
        @measured(examples)
        @given(strategy)
        def run(drawn):
            pass

        def once() -> float:
            start = time.perf_counter()
            run()
            return (time.perf_counter() - start) / examples * 1000
        return min(once() for _ in range(repeats))

    print("\n| drawing only (the test does nothing) | ms an example |")
    print("|---|---:|")
    print(f"| the bound oracle's problems | {draw_only(CHECKS['bound'].draws(case)):.2f} |", flush=True)
    for count in (10, 20, 30):
        flat = st.tuples(*[st.integers(0, 9)] * count)
        print(f"| a flat tuple of {count} integers in 0..9 | {draw_only(flat):.2f} |", flush=True)
    start = time.perf_counter()
    for _ in range(2000):
        with deterministic_PRNG():
            pass
    print(f"| saving and restoring the global random states, once per example | "
          f"{(time.perf_counter() - start) / 2000 * 1000:.2f} |")


def small(impl: impls.Implementation, examples: int, repeats: int, cap: int) -> None:
    """The shape, exact and bound oracles in-process on small problems: the default draws with the
    strategies' work cap (:data:`suites.strategies.MAX_OUTPUT_ELEMENTS`, 50,000 output elements per
    example) lowered to ``cap``."""
    print(f"\n| oracle, problems of at most {cap:,} output elements | examples/s in-process (one core) | drawing ms "
          "| implementation ms | harness ms |")
    print("|---|---:|---:|---:|---:|")
    default_cap = strategies.MAX_OUTPUT_ELEMENTS
    strategies.MAX_OUTPUT_ELEMENTS = cap  # read at draw time
    try:
        for check in ("shape", "exact", "bound"):
            rate = best(impl, check, examples, repeats)
            print(f"| {check} | {rate.per_second:.0f} | {rate.drawing:.2f} | {rate.calling:.2f} | {rate.harness:.2f} |",
                  flush=True)
    finally:
        strategies.MAX_OUTPUT_ELEMENTS = default_cap


def frameworks(builtin: impls.Implementation, examples: int, repeats: int) -> None:
    """The exact and bound oracles on each installed third-party framework beside the built-in, in-process,
    with each framework's weight of examples on fixed (already compiled) geometries."""
    extras = [impl for impl in impls.available() if impl.extra.get("third_party") and "float32" in impl.dtypes]
    print("\n| implementation | fixed-geometry weight | exact examples/s | its implementation ms | "
          "bound examples/s | its implementation ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for impl in [builtin] + extras:
        per_oracle(impl, "exact", 5)  # import and first-call costs are not the harness's
        exact, bound = best(impl, "exact", examples, repeats), best(impl, "bound", examples, repeats)
        print(f"| {impl.name} | {impl.fixed_geometries:g} | {exact.per_second:.0f} | {exact.calling:.2f} | "
              f"{bound.per_second:.0f} | {bound.calling:.2f} |", flush=True)


if __name__ == "__main__":
    main()
