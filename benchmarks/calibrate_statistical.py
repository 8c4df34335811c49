"""Measure the statistical tier's normalized-error RMS on every correct implementation (the built-ins,
the installed extras and the project's correct variants, which use every freedom the error model
grants: bias added after rounding, TF32 declared, products rounded, other summation orders) and on
simulated faults (TF32 input rounding, half-precision accumulation), to justify its limit.

    python benchmarks/calibrate_statistical.py [--examples 150] > benchmarks/results/calibration.md

Prints, per (implementation, dtype), the largest RMS seen over the drawn problems. For transform
algorithms the statistic is the RMS over output planes of the error norm in units of a correct transform's
typical error (``TransformModel.statistical_rms``); their faults are the planted half-precision transform
kernels. Install the extras (the ``frameworks`` extra) first so that ONNX Runtime and JAX are measured too.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from convt_conformance import impls, spec  # noqa: E402
from convt_conformance.impls.naive import scatter_sum  # noqa: E402
from convt_conformance.reference import batched, finish  # noqa: E402
from convt_conformance.suites import oracles  # noqa: E402
from convt_conformance.suites.case import Case  # noqa: E402
from convt_conformance.suites.checks import CallFailed, Untrusted, call, trusted  # noqa: E402
from convt_conformance.suites.environment import cpu_name  # noqa: E402
from convt_conformance.suites.strategies import problems  # noqa: E402
from tests.planted.catalog import CORRECT, CORRECT_MODULE  # noqa: E402
from tests.planted.rounding import to_tf32  # noqa: E402


def tf32_rounded(fn):
    """A kernel that rounds float32 inputs to TF32 first, undeclared: the fault to detect."""
    def rounded(input, weight, bias=None, *args, **kwargs):
        return fn(to_tf32(input), to_tf32(weight), bias, *args, **kwargs)
    return rounded


def half_accumulating(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """A kernel that keeps partial sums of half inputs in the half type, undeclared: the fault to detect."""
    geometry = spec.validate(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return finish(scatter_sum(batched(input, geometry), weight, geometry), bias, geometry, input.dtype)


def measure(impl: impls.Implementation, dtype: str, examples: int) -> float:
    worst = [0.0]
    case = Case(impl, "cpu", dtype)

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        problem = data.draw(problems(dims=impl.dims, dtype=dtype, value_kind="real", min_batch=1,
                                     pool=impl.fixed_geometries))
        try:
            evaluation = trusted(case, problem)
            y = call(evaluation)
        except (Untrusted, CallFailed):  # vacuous values, or outside the implementation's domain
            return
        if case.precision.transform:
            rms = evaluation.error_model.statistical_rms(oracles.widen(y), evaluation.y_ref)
        else:
            rms = oracles.statistical_rms(oracles.widen(y), evaluation.y_ref, evaluation.M, evaluation.K,
                                          case.precision, evaluation.y_ref_without_bias)
        worst[0] = max(worst[0], rms)

    run()
    return worst[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=150)
    args = parser.parse_args()
    impls.load_plugin(CORRECT_MODULE)
    impls.load_plugin(str(ROOT / "tests" / "planted" / "fault_classes.py"))
    print(f"machine: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python "
          f"{platform.python_version()}; {args.examples} problems per row; limit in use: "
          f"{oracles.STATISTICAL_RMS_LIMIT}\n")
    print("| implementation | kind | dtype | worst RMS |\n|---|---|---|---:|")
    naive = impls.get("naive")
    faults = [
        impls.Implementation(name="fault: TF32 inputs", fn=tf32_rounded(naive.fn), dims=(1, 2, 3), devices=("cpu",),
                             dtypes=("float32",)),
        impls.Implementation(name="fault: half accumulation", fn=half_accumulating, dims=(1, 2, 3), devices=("cpu",),
                             dtypes=("float16", "bfloat16")),
        impls.get("bug-transform-half-spectra"), impls.get("bug-transform-declared-half-sums"),
    ]
    correct = [impl for impl in impls.available() if not impl.shape_only  # meta and FakeTensor: no values
               and (impl.name in CORRECT or not impl.name.startswith(("correct-", "bug-")))]
    for impl in correct + faults:
        kind = "fault" if impl in faults else "correct"
        for dtype in impl.dtypes:
            if "cpu" not in impl.devices:
                continue
            if dtype == "complex128" or (dtype == "float64" and kind == "correct" and impl.name != "naive"):
                continue  # float64 errors are the float32 picture at 2^-53; one row keeps it visible
            print(f"| `{impl.name}` | {kind} | {dtype} | {measure(impl, dtype, args.examples):.3g} |", flush=True)


if __name__ == "__main__":
    main()
