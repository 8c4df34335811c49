"""The suite's measured power: for each planted bug, the time until the gate's expected check first
fails (before shrinking), how often the ci profile's 30 examples find it (over ``--ci-seeds`` random
seeds), the size of the minimized problem, and whether PyTorch's own OpInfo samples
(``sample_inputs_conv_transpose*``), checked as PyTorch's test_ops checks a CPU kernel, catch it.

    python benchmarks/kill_rates.py [--seeds 5] [--budget 2000] [--ci-seeds 40] [--bug NAME ...]

PyTorch's samples are checked two ways, as test_ops does: the result in float64 against torch's own
float64 kernel (``torch.testing.assert_close`` defaults), and the float32 result on non-contiguous
copies of the samples against the contiguous ones. (Planted bugs declared for half types only use
float16 instead.) Needs ``expecttest`` (the ``test`` extra) for torch.testing._internal.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from hypothesis import HealthCheck, Phase, given, seed, settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from convt_conformance import impls  # noqa: E402
from convt_conformance.suites.all_checks import CHECKS, Untrusted, run_on  # noqa: E402
from convt_conformance.suites.case import Case  # noqa: E402
from convt_conformance.suites.environment import cpu_name  # noqa: E402
from convt_conformance.suites.plugin.profiles import PROFILES  # noqa: E402
from tests.planted.catalog import EXPECTED, MODULES  # noqa: E402

CI_EXAMPLES = PROFILES["ci"]["max_examples"]
QUIET = dict(database=None, deadline=None, suppress_health_check=list(HealthCheck))


class Found(Exception):
    pass


def finds(case: Case, check: str, problems) -> bool:
    """Whether the check flags one of an example's problems *as a kind it reports* (the bound check:
    either tier): a refusal or another kind of finding on the way does not count as catching the bug."""
    for problem in problems:
        try:
            _, finding = run_on(case, problem, check)
        except Untrusted:
            continue
        if finding is not None and finding.check in CHECKS[check].kinds:
            return True
    return False


def first_failure(case: Case, check: str, run_seed: int, budget: int) -> tuple[float, int] | None:
    """Seconds and examples until the first failing example, without shrinking; None if not found."""
    examples = [0]

    @seed(run_seed)
    @settings(max_examples=budget, phases=[Phase.generate], **QUIET)
    @given(CHECKS[check].draws(case))
    def search(problems):
        examples[0] += 1
        if finds(case, check, problems):
            raise Found

    start = time.perf_counter()
    try:
        search()
    except Found:
        return time.perf_counter() - start, examples[0]
    except BaseException as exc:  # noqa: BLE001  (Hypothesis may wrap the first failure)
        if "Found" in type(exc).__name__ or "Found" in repr(exc):
            return time.perf_counter() - start, examples[0]
        raise
    return None


def minimized(case: Case, check: str) -> str:
    """The minimal failing problem Hypothesis shrinks to, as a descriptor with its element count: the
    problem of the last failing call, which is Hypothesis' final replay of the minimal example.
    (``hypothesis.find`` returns whichever example met the condition last, which, when the very
    simplest example fails and shrinking has nothing to do, can be a later, larger one.)"""
    failing: list = []

    @settings(max_examples=3000, derandomize=True, **QUIET)
    @given(CHECKS[check].draws(case))
    def search(problems):
        if finds(case, check, problems):
            failing[:] = [problems]
            raise Found

    try:
        search()
    except Exception:  # noqa: BLE001,S110  (Found, however Hypothesis wraps it)
        pass
    if not failing:
        return "(not found)"
    problem = next(p for p in failing[0] if finds(case, check, [p]))
    size = torch.Size(problem.input_shape).numel() + torch.Size(problem.weight_shape).numel()
    return f"{size} elements: `{problem.describe()}`"


def pytorch_samples_verdict(impl: impls.Implementation) -> str:
    """'caught (...)' when any of PyTorch's OpInfo samples fails as test_ops would check it: values
    against torch's kernel, non-contiguous against contiguous, shapes on the meta device (test_meta), and
    for differentiable implementations gradcheck and gradgradcheck in float64 (test_gradients)."""
    from torch.testing._internal.common_methods_invocations import op_db

    ops = {int(o.name[-2]): o for o in op_db if o.name.startswith("nn.functional.conv_transpose")}
    half_only = not {"float32", "float64"} & set(impl.dtypes)
    reference_dtype = torch.float16 if half_only else torch.float64
    layout_dtype = torch.float16 if half_only else torch.float32
    for dims in impl.dims:
        op = ops[dims]
        if impl.shape_only:
            verdict = _meta_verdict(impl, op, dims, reference_dtype)
            if verdict:
                return verdict
            continue
        if impl.differentiable("cpu") and not half_only:
            verdict = _gradient_verdict(impl, op, dims)
            if verdict:
                return verdict
        for sample in op.sample_inputs("cpu", reference_dtype, requires_grad=False):
            try:
                got = impl.fn(sample.input, *sample.args, **sample.kwargs)
                torch.testing.assert_close(got, op.op(sample.input, *sample.args, **sample.kwargs))
            except Exception as exc:  # noqa: BLE001
                return f"caught ({dims}d {str(reference_dtype)[6:]} sample: {type(exc).__name__})"
        for sample in op.sample_inputs("cpu", layout_dtype, requires_grad=False):
            try:
                plain = impl.fn(sample.input, *sample.args, **sample.kwargs)
                strided = sample.noncontiguous()
                torch.testing.assert_close(impl.fn(strided.input, *strided.args, **strided.kwargs), plain)
            except Exception as exc:  # noqa: BLE001
                return f"caught ({dims}d non-contiguous sample: {type(exc).__name__})"
    return "missed"


def _meta_verdict(impl: impls.Implementation, op, dims: int, dtype: torch.dtype) -> str | None:
    for sample in op.sample_inputs("cpu", dtype, requires_grad=False):
        meta = sample.transform(lambda t: t.to("meta") if isinstance(t, torch.Tensor) else t)
        try:
            got = impl.fn(meta.input, *meta.args, **meta.kwargs)
            expected = op.op(sample.input, *sample.args, **sample.kwargs)
            assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, expected.shape)
        except Exception as exc:  # noqa: BLE001
            return f"caught ({dims}d meta sample: {type(exc).__name__})"
    return None


def _gradient_verdict(impl: impls.Implementation, op, dims: int) -> str | None:
    for sample in op.sample_inputs("cpu", torch.float64, requires_grad=True):
        tensors = [sample.input] + [a for a in sample.args if isinstance(a, torch.Tensor)]
        others = [a for a in sample.args if not isinstance(a, torch.Tensor)]
        call = lambda *ts, others=others, kwargs=sample.kwargs: impl.fn(*ts, *others, **kwargs)  # noqa: E731
        try:
            # fast_mode, as PyTorch's own test suite runs gradcheck (unless slow gradcheck is asked for)
            torch.autograd.gradcheck(call, tensors, fast_mode=True)
            if impl.twice_differentiable("cpu"):
                torch.autograd.gradgradcheck(call, tensors, fast_mode=True)
        except Exception as exc:  # noqa: BLE001
            return f"caught ({dims}d float64 gradcheck: {type(exc).__name__})"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="random seeds per bug for the time to detection")
    parser.add_argument("--budget", type=int, default=2000, help="examples per search before giving up")
    parser.add_argument("--ci-seeds", type=int, default=40, help="random seeds for the share found in 30 examples")
    parser.add_argument("--bug", action="append", default=[], help="only these planted bugs (repeatable)")
    args = parser.parse_args()
    chosen = {bug: expected for bug, expected in EXPECTED.items() if not args.bug or bug in args.bug}
    for module in MODULES:
        impls.load_plugin(module)
    print(f"machine: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"Python {platform.python_version()}")
    print("| planted bug | fault class | check | gate: median time to first failure (examples) | found in the ci "
          "profile's 30 examples | minimized problem | PyTorch OpInfo samples |")
    print("|---|---|---|---|---|---|---|")
    ours = theirs = 0
    all_times, ci_shares = [], []
    for bug, (fault, check) in chosen.items():
        impl = impls.get(bug)
        dtype = "float32" if "float32" in impl.dtypes else impl.dtypes[0]
        case = Case(impl, impl.devices[0], dtype)
        runs = [first_failure(case, check, s, args.budget) for s in range(args.seeds)]
        found = [r for r in runs if r is not None]
        if found:
            ours += 1
            median = statistics.median(r[0] for r in found)
            all_times.append(median)
            detection = (f"{median * 1e3:.0f} ms ({statistics.median(r[1] for r in found):.0f}); "
                         f"{len(found)}/{len(runs)} seeds")
        else:
            detection = f"not found in {args.budget} examples x {len(runs)} seeds"
        within_ci = sum(first_failure(case, check, 1000 + s, CI_EXAMPLES) is not None for s in range(args.ci_seeds))
        ci_shares.append(within_ci / args.ci_seeds)
        verdict = pytorch_samples_verdict(impl)
        theirs += verdict.startswith("caught")
        print(f"| `{bug}` | {fault} | {check} | {detection} | {within_ci}/{args.ci_seeds} seeds | "
              f"{minimized(case, check)} | {verdict} |", flush=True)
    total = len(chosen)
    print(f"\nkill rate: this suite {ours}/{total}, PyTorch's OpInfo samples {theirs}/{total}; "
          f"median time to first failure over the caught bugs: {statistics.median(all_times) * 1e3:.0f} ms; "
          f"in the ci profile's {CI_EXAMPLES} examples each bug is found in {min(ci_shares):.0%} of seeds or more "
          f"(median {statistics.median(ci_shares):.0%})")


if __name__ == "__main__":
    main()
