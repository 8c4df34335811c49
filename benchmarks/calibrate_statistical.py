"""Measure the statistical tier's normalized-error RMS on correct implementations and on simulated
faults (TF32 input rounding, half-precision accumulation), to justify its limit.

    python benchmarks/calibrate_statistical.py [--examples 300]

Prints, per (implementation, dtype), the largest RMS seen over the drawn problems.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import impls  # noqa: E402
from impls import spec  # noqa: E402
from suites import oracles  # noqa: E402
from suites.harness import Case, Evaluation  # noqa: E402
from suites.strategies import problems  # noqa: E402


def tf32_rounded(fn):
    """A kernel that rounds float32 inputs to TF32 (10-bit mantissa) first: the fault to detect."""
    def rounded(input, weight, bias=None, *args, **kwargs):
        def to_tf32(t):
            bits = t.contiguous().view(torch.int32)
            return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)
        return fn(to_tf32(input), to_tf32(weight), bias, *args, **kwargs)
    return rounded


def half_accumulating(fn):
    """A kernel that keeps partial sums of half inputs in the half type: the fault to detect."""
    def low(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
        from impls.naive import batched, finish, scatter_sum
        return finish(scatter_sum(batched(input, geometry), weight, geometry), bias, geometry, input.dtype)
    return low


def measure(impl: impls.Implementation, dtype: str, examples: int) -> float:
    worst = [0.0]
    case = Case(impl, "cpu", dtype)

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        problem = data.draw(problems(dims=impl.dims, dtype=dtype, values="real", min_batch=1))
        evaluation = Evaluation(case, problem)
        if evaluation.untrusted_reason():
            return
        y = impl.fn(*evaluation.given, **problem.kwargs())
        rms = oracles.statistical_rms(oracles.widen(y), evaluation.y_ref, evaluation.M, evaluation.K,
                                      case.precision)
        worst[0] = max(worst[0], rms)

    run()
    return worst[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=300)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; limit in use: {oracles.STATISTICAL_RMS_LIMIT}")
    naive = impls.get("naive")
    faults = [
        (impls.Implementation("fault: TF32 inputs", tf32_rounded(naive.fn), (1, 2, 3), ("cpu",), ("float32",)),
         ("float32",)),
        (impls.Implementation("fault: half accumulation", half_accumulating(naive.fn), (1, 2, 3), ("cpu",),
                              ("float16", "bfloat16")), ("float16", "bfloat16")),
    ]
    correct = [(impl, [d for d in impl.dtypes if not d.startswith("complex") or d == "complex64"])
               for impl in impls.available()]
    for impl, dtypes in correct + faults:
        for dtype in dtypes:
            print(f"{impl.name:28} {dtype:10} worst RMS {measure(impl, dtype, args.examples):10.3g}", flush=True)


if __name__ == "__main__":
    main()
