"""Model sizes: for each catalog layer at its models' own sizes, the model-size check's time split between the
implementation's calls and the harness's own work (values, copies, the definition at sampled positions, the
norms of the adjoint identity), and what a transform algorithm could get away with there: the relative error
(normwise, per plane) that the worst-case plane allowance lets pass, against the limit of the size-aware
typical tier.

    python benchmarks/model_sizes.py [--impl torch-cpu-default] [--dtype float32] [--use inference training]

A layer whose problem does not fit the memory cap is listed as skipped, with the cap.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from convt_conformance import impls  # noqa: E402
from convt_conformance.reference import batched  # noqa: E402
from convt_conformance.suites import catalog, oracles, sizes  # noqa: E402
from convt_conformance.suites.case import Case  # noqa: E402
from convt_conformance.suites.checks import run_on  # noqa: E402
from convt_conformance.suites.environment import cpu_name  # noqa: E402
from convt_conformance.suites.limits import SCALE_CAPS  # noqa: E402
from convt_conformance.suites.model_size_checks import MODEL_SIZE  # noqa: E402


class Timed:
    """The implementation's function, timing every call; autograd's backward is added by timed_backward."""

    def __init__(self, fn):
        self.fn, self.seconds, self.backward_calls = fn, 0.0, 0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            result = self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
        return result


def timed_backward(timer: Timed):
    """Count autograd's backward as the implementation's time (patches torch.autograd.grad; returns the original)."""
    original = torch.autograd.grad

    def grad(*args, **kwargs):
        timer.backward_calls += 1
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            timer.seconds += time.perf_counter() - start

    torch.autograd.grad = grad
    return original


def transform_slack(problem) -> tuple[float, float]:
    """For a transform algorithm in float32 on this problem: the largest normwise relative error per plane the
    worst-case plane allowance passes, and the limit the typical tier sets (4x a correct transform's typical
    error, RMS over the plane), both relative to the plane's output norm."""
    x, w, _ = problem.tensors()
    geometry = problem.geometry()
    prec = oracles.precision_of(torch.float32, algorithm="transform")
    x64, w64 = oracles.widen(batched(x, geometry)), oracles.widen(w)
    B, B2 = oracles.transform_norms(x64, w64, geometry.groups)
    log2_n = oracles.transform_log2_size(geometry.full_size())
    plane = math.prod(geometry.output_size)
    worst = oracles.transform_coefficient(log2_n, geometry.in_channels_per_group, prec) * B
    typical = oracles.transform_spread(B2, log2_n, plane, prec) * math.sqrt(plane)  # its 2-norm per plane
    # a plane's output norm for random values, whose channels add like a random walk: sum_c ||x_c|| ||w_c|| / sqrt(C)
    size = B2 / math.sqrt(geometry.in_channels_per_group)
    return float((worst / size).median()), float((oracles.STATISTICAL_RMS_LIMIT * typical / size).median())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", default="torch-cpu-default")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--use", nargs="+", default=["inference", "training"])
    args = parser.parse_args()
    impl = impls.registry.get(args.impl)
    print(f"machine: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"Python {platform.python_version()}; {args.impl} {args.dtype}; memory cap per problem "
          f"{sizes.memory_cap('cpu') / 2**30:.1f} GiB; gradients where zero insertion's work is within "
          f"{SCALE_CAPS.work:.3g} multiply-adds\n")
    print("| layer | use | multiply-adds | gradients | check s | implementation s | harness s | harness / "
          "implementation | transform: worst-case allowance / typical-tier limit (relative, per plane) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for layer in catalog.LAYERS:
        for use in layer.uses():
            if use not in args.use:
                continue
            problem = layer.problem(use, args.dtype)
            too_large = sizes.fits(problem, "cpu", gradients=False)
            if too_large:
                print(f"| {layer.name} | {use} | {catalog.macs(problem):.3g} | | skipped: {too_large} | | | | |")
                continue
            timer = Timed(impl.fn)
            case = Case(dataclasses.replace(impl, fn=timer), "cpu", args.dtype, SCALE_CAPS)
            original = timed_backward(timer)
            start = time.perf_counter()
            try:
                evaluation, finding = run_on(case, problem, MODEL_SIZE)
            finally:
                torch.autograd.grad = original
            total = time.perf_counter() - start
            harness = total - timer.seconds
            gradients = "yes" if timer.backward_calls else "no"
            worst, typical = transform_slack(problem)
            verdict = "" if finding is None else f" ({finding.check}: {finding.summary})"
            print(f"| {layer.name} | {use} | {catalog.macs(problem):.3g} | {gradients} | {total:.2f}{verdict} | "
                  f"{timer.seconds:.2f} | {harness:.2f} | {harness / timer.seconds:.2f} | "
                  f"{worst:.2%} / {typical:.4%} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
