"""Problems round-trip through JSON, rebuild the same values, and lay them out without changing them."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convt_conformance import impls, spec
from convt_conformance.reference import reference
from convt_conformance.suites.case import Case
from convt_conformance.suites.evaluation import Evaluation
from convt_conformance.suites.oracles import bits
from convt_conformance.suites.problem import EXACT_INTEGER_LIMIT, Problem, magnitude
from convt_conformance.suites.strategies import GEOMETRY_POOL, problems


@given(problem=problems())
def test_json_round_trip(problem):
    assert Problem.from_dict(problem.to_dict()) == problem
    assert Problem.from_dict(__import__("json").loads(problem.to_json())) == problem


@settings(max_examples=60)
@given(problem=problems(dtype="float32", value_kind="special"))
def test_values_depend_only_on_the_problem(problem):
    first, second = problem.tensors(), problem.tensors()
    for a, b in zip(first, second):
        assert (a is None and b is None) or torch.equal(bits(a), bits(b))


@settings(max_examples=80)
@given(problem=problems(dtype="float32", value_kind="real"))
def test_layouts_keep_the_values(problem):
    values = problem.tensors()
    given_tensors = problem.materialize()
    for plain, laid in zip(values, given_tensors):
        assert (plain is None and laid is None) or torch.equal(plain, laid)
    if problem.layout in ("noncontig_input",):
        assert not given_tensors.input.is_contiguous() or given_tensors.input.numel() <= 1
    if problem.layout == "expanded_weight" and given_tensors.weight.shape[0] > 1:
        assert given_tensors.weight.stride(0) == 0


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32", "complex64"])
@settings(max_examples=40)
@given(data=st.data())
def test_integer_values_keep_every_partial_sum_exact(dtype, data):
    problem = data.draw(problems(dtype=dtype, value_kind="int"))
    tensors = problem.tensors()
    M = magnitude(tensors, problem)
    assert M.numel() == 0 or M.max().item() <= EXACT_INTEGER_LIMIT[dtype]
    assert torch.equal(tensors.input, tensors.input.real.round() + (1j * tensors.input.imag.round()
                                                                       if dtype.startswith("complex") else 0))


@settings(max_examples=40)
@given(problem=problems(dtype="float64", value_kind="real"))
def test_an_evaluation_holds_the_definition_and_gives_copies(problem):
    evaluation = Evaluation(Case(impls.get("naive"), "cpu", "float64"), problem)
    assert torch.equal(bits(evaluation.y_ref), bits(reference(*problem.tensors(), **problem.kwargs())))
    for value, given_tensor in zip(evaluation.values, evaluation.given):
        if value is not None and value.numel():
            first = (0,) * value.dim()
            given_tensor[first] = 1e300  # a kernel that writes into its input does not move the reference
            assert value[first].item() != 1e300


def test_describe_is_one_compact_line():
    problem = Problem((2, 4, 5, 7), (4, 3, 3, 3), True, (2, 1), (1, 0), (1, 0), (1, 2), 2, "float32")
    assert problem.describe() == ("2d n2 c4->6 g2 L5x7 k3x3 s2x1 p1x0 op1x0 d1x2 bias float32 real "
                                  "contiguous seed=0")


def test_a_share_of_fixed_geometries_still_draws_new_ones():
    geometries = {template.replace(seed=0, dtype="float32").weight_shape for template in GEOMETRY_POOL}
    drawn = []

    @settings(max_examples=200, derandomize=True, database=None)
    @given(problem=problems(pool=0.5))
    def collect(problem):
        drawn.append(problem.weight_shape in geometries)

    collect()
    assert 0.25 < sum(drawn) / len(drawn) < 0.75


def test_a_problem_keeps_its_validated_geometry_only_while_the_geometry_stays():
    problem = Problem((1, 2, 5), (2, 3, 3), True, (2,), (1,), (1,), (1,), 1, "float32")
    geometry = problem.geometry()
    assert problem.replace(seed=5, layout="noncontig_input").geometry() is geometry  # values only: kept
    assert problem.replace(padding=(2,)).geometry().output_size == (8,)  # another geometry: validated anew
    with pytest.raises(spec.InvalidProblem):
        problem.replace(output_padding=(2,)).geometry()  # output_padding >= max(stride, dilation)
    assert problem.replace(seed=5) == problem.replace(seed=5).replace()  # the cache is no field
    assert "_geometry" not in problem.to_dict()


def test_the_fixed_geometry_pool_covers_every_region_a_geometry_can_hold():
    """Implementations that compile per shape are checked on the pool only: a region it misses is never met."""
    from convt_conformance.suites.strategies import GEOMETRY_POOL, NOT_GEOMETRY_REGIONS, REGIONS, regions_of

    covered = set().union(*(regions_of(template) for template in GEOMETRY_POOL))
    assert set(REGIONS) - NOT_GEOMETRY_REGIONS <= covered, set(REGIONS) - NOT_GEOMETRY_REGIONS - covered
    assert NOT_GEOMETRY_REGIONS <= set(REGIONS)  # no stale names


def test_pooled_weights_stay_one_value_while_the_inputs_vary():
    """fixed_weights: a compiled-weight runtime sees few distinct weights per geometry, and new inputs."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    from convt_conformance import impls
    from convt_conformance.suites.all_checks import CHECKS
    from convt_conformance.suites.case import Case
    from tests.conftest import PLANTED

    impls.load_plugin(str(PLANTED / "compiled_weights.py"))
    case = Case(impls.get("compiled-weights-runtime"), "cpu", "float32")
    weights, inputs = {}, set()

    @hypothesis_settings(max_examples=60, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(CHECKS["bound"].draws(case))
    def draw(problems):
        (problem,) = problems
        x, w, b = problem.tensors()
        key = (problem.replace(seed=0, weight_seed=None, value_kind="real", layout="contiguous"), problem.weight_seed,
               problem.value_kind)
        weights.setdefault(key, set()).add(w.numpy().tobytes() + (b.numpy().tobytes() if b is not None else b""))
        inputs.add(x.numpy().tobytes())

    draw()
    assert all(len(values) == 1 for values in weights.values())  # one weight per (geometry, pooled seed)
    assert {seed for _, seed, _ in weights} <= {0, 1} and len(inputs) > len(weights)
