"""Model sizes: the definition at sampled positions is the definition, the catalog's problems are what their
models run, the search reaches past the block edges within its caps, and the model-size check passes correct
large-problem kernels and flags the planted size-bound bugs (the gate's own search finds them:
tests/test_kill_rate.py; the 2^31 boundary: the scale profile below)."""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convt_conformance import impls
from convt_conformance.reference import reference
from convt_conformance.reports.records import read_report
from convt_conformance.suites import catalog, gradients, sampled, sizes
from convt_conformance.suites.case import Case
from convt_conformance.suites.checks import run_on
from convt_conformance.suites.limits import GATE_CAPS, Caps
from convt_conformance.suites.model_size_checks import ADJOINT, MODEL_SIZE, SampledEvaluation, adjoint_identity
from convt_conformance.suites.problem import Problem, magnitude, term_count
from convt_conformance.suites.strategies import problems

from .conftest import PLANTED
from .planted.catalog import CORRECT_AT_SIZE, CORRECT_MODULE

SIZE_BUGS = str(PLANTED / "size_bugs.py")
impls.load_plugin(SIZE_BUGS)
impls.load_plugin(CORRECT_MODULE)


def _case(name: str, dtype: str = "float32") -> Case:
    return Case(impls.registry.get(name), "cpu", dtype)


@settings(max_examples=60)
@given(problem=problems(dtype="float64", layouts=("contiguous",), min_batch=1), seed=st.integers(0, 2**31 - 1))
def test_the_definition_at_sampled_positions_is_the_whole_reference_there(problem: Problem, seed: int):
    if not problem.batched:  # the sampled definition reads batched tensors
        problem = problem.replace(input_shape=(1,) + problem.input_shape)
    x, w, b = problem.tensors()
    geometry = problem.geometry()
    generator = torch.Generator().manual_seed(seed)
    rows = sampled.output_positions(geometry, generator)
    at = sampled.forward_at(x, w, b, geometry, rows)
    index = tuple(rows.T)
    torch.testing.assert_close(at.value, reference(x, w, b, **problem.kwargs())[index], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(at.M, magnitude((x, w, b), problem)[index])
    torch.testing.assert_close(at.K, term_count((x, w, b), problem)[index].double())
    g = problem.grad_output()
    whole = gradients.reference_first((x, w, b), problem.kwargs(), g)
    rows_in, rows_w = sampled.input_positions(geometry, generator), sampled.weight_positions(geometry, generator)
    for name, rows, got in (("input", rows_in, sampled.grad_input_at(g, w, geometry, rows_in)),
                            ("weight", rows_w, sampled.grad_weight_at(x, g, geometry, rows_w))):
        torch.testing.assert_close(got.value, whole[name][tuple(rows.T)], rtol=1e-12, atol=1e-12)
    # the bounds from norms hold
    spread = reference(x.abs(), w.abs(), None, **problem.kwargs())
    assert float(spread.norm()) <= sampled.operator_norm_bound(w, geometry) * float(x.norm()) * (1 + 1e-12)
    assert int(term_count((x, w, None), problem).max()) <= sampled.most_terms(geometry)[0]


def test_complex_gradients_are_autograds_conjugate_transposes():
    problem = Problem(input_shape=(2, 4, 3, 2), weight_shape=(4, 3, 2, 3), bias=True, stride=(2, 1), padding=(0, 1),
                      output_padding=(1, 0), dilation=(1, 2), groups=2, dtype="complex128", seed=5)
    x, w, b = problem.tensors()
    geometry, g = problem.geometry(), problem.grad_output()
    whole = gradients.reference_first((x, w, b), problem.kwargs(), g)
    generator = torch.Generator().manual_seed(1)
    rows_in, rows_w = sampled.input_positions(geometry, generator), sampled.weight_positions(geometry, generator)
    torch.testing.assert_close(sampled.grad_input_at(g, w, geometry, rows_in).value, whole["input"][tuple(rows_in.T)])
    torch.testing.assert_close(sampled.grad_weight_at(x, g, geometry, rows_w).value, whole["weight"][tuple(rows_w.T)])


def test_positions_hold_corners_phase_ends_block_edges_and_where_32_bit_indices_wrap():
    problem = Problem(input_shape=(3, 2048, 9), weight_shape=(2048, 1024, 16), bias=False, stride=(8,),
                      padding=(4,), output_padding=(0,), dilation=(1,), groups=2, dtype="float32")
    geometry = problem.geometry()
    rows = sampled.output_positions(geometry, torch.Generator().manual_seed(0))
    channels, lengths = set(rows[:, 1].tolist()), set(rows[:, 2].tolist())
    assert {0, 63, 64, 255, 256, 1023, 1024, 1024 + 64, 2047} <= channels  # both groups' block edges
    out = geometry.output_size[0]
    for phase in range(8):  # the first and last position of every stride phase
        members = [o for o in range(out) if (o + 4) % 8 == phase]
        assert members[0] in lengths and members[-1] in lengths
    assert {0, 2} <= set(rows[:, 0].tolist())
    huge = sampled.positions([[0], [0], [0]], (1, 1, 2**31 + 16), torch.Generator().manual_seed(0))
    assert {2**31 - 1, 2**31} <= set(huge[:, 2].tolist())


def test_the_catalog_holds_real_layers_and_boundaries_past_2_31():
    for layer in catalog.LAYERS:
        assert layer.model and "arXiv" in layer.source
        full, gate = layer.problem("inference", "float32"), layer.problem("gate", "float32")
        full.geometry(), gate.geometry()  # valid
        assert gate.weight_shape[1:] == full.weight_shape[1:] and gate.stride == full.stride
        assert gate.padding == full.padding and catalog.macs(gate) <= catalog.macs(full)
        if layer.training:
            assert layer.problem("training", "float32").input_shape[0] >= 1
    stylegan = catalog.BY_NAME["stylegan2-512-512"].problem("inference", "float32")
    assert stylegan.groups == 4 and stylegan.input_shape[:2] == (1, 4 * 512)  # groups = batch
    crossing = {b.name: b.problem("bfloat16") for b in catalog.BOUNDARIES}
    assert math.prod(crossing["int32-output"].geometry().output_shape) > 2**31
    assert math.prod(crossing["int32-input"].input_shape) > 2**31
    assert math.prod(crossing["int32-weight"].weight_shape) > 2**31
    assert len(catalog.entries(scale=False)) == len(catalog.LAYERS)
    assert {e.id for e in catalog.entries(scale=True)} >= {"int32-output", "hifigan-512-256-training"}


@settings(max_examples=150)
@given(st.data())
def test_the_search_stays_within_its_caps(data):
    caps = Caps(work=2**22, elements=2**18, taps=256)
    problem = data.draw(sizes.model_size_problems((1, 2, 3), "float32", caps))
    problem.geometry()  # valid
    assert catalog.macs(problem) <= caps.work
    assert max(sizes.tensor_elements(problem)) <= caps.elements


def test_the_search_reaches_past_every_small_size_limit():
    drawn = []

    @settings(max_examples=200, database=None)
    @given(st.data())
    def draw(data):
        drawn.append(data.draw(sizes.model_size_problems((1, 2, 3), "float32", GATE_CAPS)))

    draw()
    per_group = {p.weight_shape[0] // p.groups for p in drawn}
    assert {1000, 1023, 1024} & per_group and {63, 64, 65} <= per_group | {63, 64, 65} and max(per_group) > 256
    assert any(max(p.weight_shape[2:]) >= 16 for p in drawn) and any(max(p.stride) >= 8 for p in drawn)
    assert any(p.input_shape[0] > 3 for p in drawn)


def test_a_problem_over_the_memory_cap_is_named_with_the_cap():
    problem = catalog.BOUNDARIES[1].problem("float64")
    reason = sizes.fits(problem, "cpu", gradients=False) if sizes.memory_cap("cpu") < 2**35 else "over"
    assert reason and ("GiB" in reason or reason == "over")
    assert sizes.footprint(problem, gradients=True) > sizes.footprint(problem, gradients=False)


@pytest.mark.parametrize("name", ["torch-cpu-default", "correct-blocked-64", "correct-split-k"])
def test_correct_kernels_pass_the_catalog(name):
    case = _case(name)
    for layer in ("pix2pix-1024-512", "hifigan-512-256", "fcn32s-upscore", "stylegan2-512-512"):
        evaluation, finding = run_on(case, catalog.BY_NAME[layer].problem("gate", "float32"), MODEL_SIZE)
        assert finding is None, finding.render()
        assert evaluation.measured["max"] <= 1 and evaluation.measured["rms"] < 4


def test_a_correct_fft_passes_the_catalog():
    layers = ("hifigan-512-256", "pix2pix-1024-512", "fcn8s-upscore8")
    for layer in layers:
        evaluation, finding = run_on(_case("correct-fft"), catalog.BY_NAME[layer].problem("gate", "float32"),
                                     MODEL_SIZE)
        assert finding is None, finding.render()
        assert evaluation.measured["rms"] < 1


@pytest.mark.slow
def test_the_gate_passes_the_correct_large_problem_kernels(gate):
    run = gate("--impl-module", SIZE_BUGS, *(arg for name in CORRECT_AT_SIZE for arg in ("--impl", name)),
               "--contain", "none", "-k", "test_model_sizes or test_catalog", "--dtype", "float32",
               "--dtype", "bfloat16")
    assert run.returncode == 0, run.output[-3000:]
    for name in CORRECT_AT_SIZE:
        assert re.search(rf"^{name}\s+model-size\s+[1-9]\d*\s+0\s+0$", run.output, re.M), run.output[-3000:]


def _wide_problem(cin_g: int, dtype: str = "float32") -> Problem:
    return Problem(input_shape=(2, cin_g, 3), weight_shape=(cin_g, 5, 4), bias=True, stride=(2,), padding=(1,),
                   output_padding=(0,), dilation=(1,), groups=1, dtype=dtype, seed=3)


@pytest.mark.parametrize("bug, wrong, right", [("bug-drops-channels-past-64", 65, 64),
                                               ("bug-blocked-tail-1024", 1000, 1024),
                                               ("bug-wrong-past-small-sizes", None, None)])
def test_size_bound_bugs_are_flagged_past_their_threshold_only(bug, wrong, right):
    case = _case(bug)
    if wrong is None:  # wrong for a batch of 4, right for 3
        wrong_problem = _wide_problem(8).replace(input_shape=(4, 8, 3))
        right_problem = _wide_problem(8).replace(input_shape=(3, 8, 3))
    else:
        wrong_problem, right_problem = _wide_problem(wrong), _wide_problem(right)
    _, finding = run_on(case, wrong_problem, MODEL_SIZE)
    assert finding is not None and finding.check == MODEL_SIZE and "output" in finding.summary, finding
    assert len(finding.details["index"]) == 3 and finding.details["sampled"] > 10
    assert run_on(case, right_problem, MODEL_SIZE)[1] is None


def test_the_adjoint_identity_flags_a_backward_that_disagrees_with_the_forward():
    case = _case("torch-cpu-default")
    problem = catalog.BY_NAME["hifigan-512-256"].problem("gate", "float32")
    evaluation = SampledEvaluation(case, problem)
    got = gradients.output_and_gradients(case.impl.fn, evaluation.given, problem.kwargs(), evaluation.given_grad_output)
    assert adjoint_identity(evaluation, got) is None
    for name in ("input", "weight"):
        # zero (a real oneDNN bfloat16 defect returns a zero grad_input), or of the wrong sign
        for wrong in (torch.zeros_like(got[name]), -got[name]):
            finding = adjoint_identity(evaluation, dict(got, **{name: wrong}))
            assert finding is not None and finding.check == ADJOINT and f"grad_{name}" in finding.summary


def test_a_transform_kernel_half_a_percent_off_fails_at_model_size():
    """The plane allowance alone would pass it (it grows with the layer); the size-aware typical tier does not."""
    case = _case("bug-transform-percent-off")
    evaluation, finding = run_on(case, catalog.BY_NAME["hifigan-512-256"].problem("gate", "float32"), MODEL_SIZE)
    assert finding is not None and "RMS" in finding.summary, finding
    assert evaluation.measured["max"] < 1  # within the worst-case plane allowance


def test_the_scale_profile_catches_a_32_bit_index_overflow(gate, tmp_path):
    problem = catalog.BOUNDARIES[0].problem("bfloat16")
    too_large = sizes.fits(problem, "cpu", gradients=False)
    if too_large:
        pytest.skip(f"int32-output {too_large}")
    out = tmp_path / "out"
    run = gate("--impl-module", SIZE_BUGS, "--impl", "bug-index-overflow-32bit", "--dtype", "bfloat16",
               "--convt-profile", "scale", "-k", "test_catalog and int32-output", "--report-dir", str(out),
               "--contain", "none")
    assert run.returncode == 1 and run.failed("test_catalog"), run.output[-3000:]
    (record,) = [r for r in read_report(out / "report.json")["discrepancies"] if r["status"] == "unexpected"]
    assert record["check"] == MODEL_SIZE and math.prod(record["problem"]["input_shape"]) == 2**27 + 1


def test_repro_reruns_a_model_size_finding(capsys):
    """repro accepts every registered check (the model-size and gradient checks included) and does not form the
    whole definition of a model-size problem."""
    from convt_conformance.cli import main

    problem = _wide_problem(65).replace(input_shape=(1, 65, 2048), weight_shape=(65, 512, 16), stride=(8,),
                                        padding=(4,))
    code = main(["repro", "--impl", "bug-drops-channels-past-64", "--check", MODEL_SIZE, "--impl-module", SIZE_BUGS,
                 "--problem", problem.to_json()])
    out = capsys.readouterr().out
    assert code == 1 and "reproduced: model-size: output:" in out and "expected output" not in out, out
