"""The error model follows what an implementation declares, on every device, and stays consistent:
every freedom the per-element bound grants is in the statistical scale; a transform's allowance holds
for a correct FFT kernel, and a direct kernel that far off is flagged."""

from __future__ import annotations

import pytest
import torch

from convt_conformance import impls, spec
from convt_conformance.impls.registry import RegistryError
from convt_conformance.suites import checks, oracles
from convt_conformance.suites.case import Case
from convt_conformance.suites.problem import Problem

from .planted.catalog import CORRECT_MODULE
from .planted.fft import fft_conv_transpose

impls.load_plugin(CORRECT_MODULE)


def declared(**declarations) -> impls.Implementation:
    name = f"declared-{len(impls.all_implementations())}"
    impls.register(name, devices=("cpu", "cuda"), dtypes=spec.ALL_DTYPES, **declarations)(
        impls.get("naive").fn)
    return impls.get(name)


def problem(**changes) -> Problem:
    base = Problem(input_shape=(2, 4, 6, 5), weight_shape=(4, 3, 3, 2), bias=True, stride=(2, 1), padding=(1, 0),
                   output_padding=(1, 0), dilation=(1, 2), groups=2, dtype="float32", value_kind="real", seed=7)
    return base.replace(**changes)


def test_tf32_is_honoured_on_the_devices_declared():
    everywhere, cuda_only = declared(tf32=True), declared(tf32=("cuda",))
    assert Case(everywhere, "cpu", "float32").precision.u_in == 2.0**-10
    assert Case(cuda_only, "cpu", "float32").precision.u_in == 0
    assert Case(cuda_only, "cuda", "float32").precision.u_in == 2.0**-10
    assert Case(everywhere, "cpu", "float64").precision.u_in == 0  # TF32 rounds float32 inputs only


def test_product_rounding_and_algorithm_are_per_dtype():
    impl = declared(products={"bfloat16": "bfloat16"}, algorithm={"float32": "transform"})
    assert Case(impl, "cpu", "bfloat16").precision.u_prod == 2.0**-8
    assert Case(impl, "cpu", "float16").precision.u_prod == 0
    assert Case(impl, "cpu", "float32").precision.transform and not Case(impl, "cpu", "float64").precision.transform


def test_product_rounding_is_far_tighter_than_half_accumulation():
    products = Case(declared(products={"bfloat16": "bfloat16"}), "cpu", "bfloat16")
    accumulation = Case(declared(accumulation={"bfloat16": "bfloat16"}), "cpu", "bfloat16")
    p = problem(dtype="bfloat16", input_shape=(2, 16, 6, 5), weight_shape=(16, 3, 3, 2))
    tight = checks.trusted(products, p).error_model.allowed
    loose = checks.trusted(accumulation, p).error_model.allowed
    assert (loose > 4 * tight).all()


@pytest.mark.parametrize("declarations, error", [
    (dict(algorithm="winograd"), "algorithm must be one of"),
    (dict(tf32=("tpu",)), "tf32 names devices"),
    (dict(products={"float32": "float8"}), "unknown dtypes"),
])
def test_bad_declarations_are_one_line_errors(declarations, error):
    with pytest.raises(RegistryError, match=error):
        impls.register("bad-declaration", **declarations)(impls.get("naive").fn)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_bias_added_after_rounding_passes_both_tiers(dtype):
    """The two roundings (the sum, then the sum plus a large bias) are granted by the bound, and so
    must be by the statistical scale."""
    case = Case(impls.get("correct-bias-after-rounding"), "cpu", dtype)
    for seed in range(20):
        p = problem(dtype=dtype, seed=seed)
        evaluation = checks.trusted(case, p)
        x, w, b = evaluation.values
        evaluation.__dict__["values"] = type(evaluation.values)(x, w, b * 64)  # the bias dominates
        for name in ("y_ref", "y_ref_without_bias", "M", "K", "error_model"):
            evaluation.__dict__.pop(name, None)
        y = case.impl.fn(*evaluation.values, **p.kwargs())
        finding, stats = oracles.check_bound(y, evaluation.y_ref, evaluation.error_model, case.precision,
                                             evaluation.y_ref_without_bias)
        assert finding is None and stats["rms"] < 1, (seed, stats)


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "complex64"])
def test_a_correct_fft_kernel_is_within_the_transform_allowance(dtype):
    case = Case(impls.get("correct-fft"), "cpu", dtype)
    for seed in range(10):
        _, finding = checks.run_on(case, problem(dtype=dtype, seed=seed), "bound")
        assert finding is None, finding.render()


def test_a_direct_kernel_as_far_off_as_a_transform_is_flagged():
    direct = Case(declared(), "cpu", "float32")
    p = problem(input_shape=(1, 8, 12, 9), weight_shape=(8, 3, 3, 2), value_kind="real")
    evaluation = checks.trusted(direct, p)
    y = fft_conv_transpose(*evaluation.values, **p.kwargs())
    finding, _ = oracles.check_bound(y, evaluation.y_ref, evaluation.error_model, direct.precision,
                                     evaluation.y_ref_without_bias)
    assert finding is not None and finding.check in ("bound", "statistical")


def test_the_transform_allowance_still_sees_one_misplaced_term():
    case = Case(impls.get("correct-fft"), "cpu", "float32")
    evaluation = checks.trusted(case, problem(value_kind="int"))
    y = fft_conv_transpose(*evaluation.values, **evaluation.problem.kwargs())
    assert oracles.check_exact(y, evaluation.y_ref, torch.float32, evaluation.error_model) is None
    x, w, _ = evaluation.values
    y[0, 0, 1, 1] += float(x.abs().max() * w.abs().max()) or 1.0  # one product landing one place off
    finding = oracles.check_exact(y, evaluation.y_ref, torch.float32, evaluation.error_model)
    assert finding is not None and finding.details["plane"] == [0, 0]


def test_the_bound_check_flags_one_element_past_its_allowance_and_not_one_within_it():
    case = Case(impls.get("naive"), "cpu", "float32")
    evaluation = checks.trusted(case, problem())
    model, y_ref = evaluation.error_model, evaluation.y_ref
    index = (0, 0, 1, 1)  # results given in float64: the float32 allowance is far above their rounding
    within = y_ref.clone()
    within[index] += 0.5 * model.allowed[index]
    past = y_ref.clone()
    past[index] += 2 * model.allowed[index]
    finding, measured = oracles.check_bound(within, y_ref, model, case.precision, evaluation.y_ref_without_bias)
    assert finding is None or finding.check == "statistical"  # within the hard bound
    assert measured["max"] == pytest.approx(0.5, rel=1e-6)
    finding, measured = oracles.check_bound(past, y_ref, model, case.precision, evaluation.y_ref_without_bias)
    assert finding is not None and finding.check == "bound" and finding.details["index"] == list(index)
    assert measured["max"] == pytest.approx(2.0, rel=1e-6)
