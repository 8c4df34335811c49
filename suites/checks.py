"""The check registry: one record per check, and :func:`run_on`, the one way to run a check on a problem.

A check is a plain function ``(evaluation) -> Finding | None`` registered with :func:`check`, whose
record says everything else about it: the test that runs it, the problems it draws, the values a
stored problem replays with, whether vacuous values are re-seeded first, which finding details get
the definition's terms, and which other kinds of finding it may report. The Hypothesis tests
(``suites/test_checks.py``), the corpus replay, ``convt repro`` and the benchmarks all go through this
registry and :func:`run_on`. Adding a check is one decorated function. The forward checks are here; the
gradient and module checks register from their own modules, and :mod:`.all_checks` holds every one.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from . import oracles
from .case import Case
from .containment import ContainmentError, RaisedInWorker
from .evaluation import Evaluation, ExactEvaluation
from .problem import Problem, Tensors, magnitude
from .strategies import invalid_problem_sets, problems, within_domain


class Untrusted(Exception):
    """No values for this problem make the check meaningful; redraw it (or skip a stored one)."""


class CallFailed(Exception):
    """The implementation raised on a valid problem, crashed or hung; ``finding`` says how."""

    def __init__(self, finding: oracles.Finding) -> None:
        super().__init__(finding.summary)
        self.finding = finding


CheckFunction = Callable[[Evaluation], "oracles.Finding | None"]
ProblemDraws = Callable[[Case], st.SearchStrategy[list[Problem]]]
# What any check may find besides its own kind: calling the implementation can fail.
CALL_FINDINGS = ("valid-refused", "crash", "timeout")


@dataclass(frozen=True)
class Check:
    """Everything the suite knows about one check."""

    name: str  # the kind of finding it reports, and its name in records, rules and repro
    function: CheckFunction
    test: str  # the Hypothesis test that runs it
    draws: ProblemDraws  # the problems of one example
    replays: str | None = None  # the kind of values a stored problem is replayed with (None: its own)
    compares_values: bool = False  # vacuous values are re-seeded first (oracle 7)
    explain: tuple[str, ...] = ()  # finding details holding an output index to explain
    also_finds: tuple[str, ...] = ()  # other kinds of finding it reports (the bound's statistical tier)
    applies: Callable[[Case], str | None] = lambda case: None  # why it does not apply to a case, or None
    without_bias: bool = False  # checks the linear map: the bias is dropped
    expects_invalid: bool = False  # runs on problems that break a validity rule
    evaluation: type[Evaluation] = Evaluation  # what it needs prepared (the gradient checks: g and more)
    needs_values: bool = True  # False: it looks at shapes and refusals only (runs on shape-only implementations)
    # its first call on each problem is the plain call on the problem's tensors, and an example draws several:
    # a contained implementation answers them all from one round trip (see prepared_ahead)
    calls_ahead: bool = False

    def skip_reason(self, case: Case) -> str | None:
        """Why this check does not run on ``case`` (a declaration rules it out), or None."""
        if self.needs_values and case.impl.shape_only:
            return f"{case.impl.name} computes shapes only"
        return self.applies(case)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of finding that mean this check failed (not the call failures any check may meet)."""
        return (self.name,) + self.also_finds

    def as_run(self, problem: Problem) -> Problem:
        """The problem this check runs (without its bias where the check is for the linear map)."""
        return problem.replace(bias=False) if self.without_bias else problem

    def problem(self, stored: Problem, dtype: str) -> Problem:
        """A stored problem as this check replays it in ``dtype``."""
        return self.as_run(stored.replace(dtype=dtype, value_kind=self.replays or stored.value_kind))


CHECKS: dict[str, Check] = {}


def check(name: str, test: str, draws: ProblemDraws, **record) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the check ``name`` (see :class:`Check` for ``record``)."""

    def decorator(function: CheckFunction) -> CheckFunction:
        if name in CHECKS:
            raise ValueError(f"check {name!r} is already registered")
        CHECKS[name] = Check(name, function, test, _built_once_per_case(draws), **record)
        return function

    return decorator


def _built_once_per_case(draws: ProblemDraws) -> ProblemDraws:
    """``draws``, building one strategy per case: the tests ask for it every example, and Hypothesis
    validates each new strategy object on its first draw (an eighth of an example's time)."""
    built: dict[tuple, tuple[Any, st.SearchStrategy[list[Problem]]]] = {}

    def draws_for(case: Case) -> st.SearchStrategy[list[Problem]]:
        key = (id(case.impl), case.device, case.dtype_name, case.caps)
        if key not in built:
            built[key] = (case.impl, draws(case))  # holding the implementation: its id is not reused
        return built[key][1]

    return draws_for


def check_for(kind: str) -> Check:
    """The check that reports findings of ``kind`` (``statistical`` is the bound check's)."""
    for registered in CHECKS.values():
        if kind in registered.kinds:
            return registered
    raise KeyError(kind)


def valid(inside_domain: bool = True, **draws) -> ProblemDraws:
    """One valid problem per example, drawn with ``draws`` for the case's dims and dtype, inside the
    implementation's declared domain (outside it, with ``inside_domain=False``)."""

    def draw_for(case: Case) -> st.SearchStrategy[list[Problem]]:
        drawn = problems(dims=case.impl.dims, dtype=case.dtype_name, pool=case.impl.fixed_geometries, **draws)
        if case.impl.fixed_weights:  # the weight from a small pool per geometry, the input new
            drawn = st.tuples(drawn, st.integers(0, case.impl.fixed_weights - 1)).map(
                lambda drawn_and_seed: drawn_and_seed[0].replace(weight_seed=drawn_and_seed[1]))
        if case.impl.domain:
            drawn = within_domain(drawn, case.impl.outside_domain, inside=inside_domain)
        return drawn.map(lambda p: [p])

    return draw_for


def invalid(case: Case) -> st.SearchStrategy[list[Problem]]:
    """Four problems per example, each breaking a different validity rule of one base problem; fewer for
    an implementation that compiles each new shape (an invalid problem it accepts is one): two where
    most examples reuse fixed geometries, one where all do."""
    pooled = case.impl.fixed_geometries
    rules = 1 if pooled == 1 else 2 if pooled >= 0.5 else 4
    return invalid_problem_sets(dims=case.impl.dims, dtype=case.dtype_name, rules=rules, pool=pooled)


# -- calling the implementation -------------------------------------------------------------------
def call(evaluation: Evaluation, tensors: Tensors | None = None) -> torch.Tensor:
    """Run the implementation on a valid problem; refusing it is a discrepancy of its own."""
    (result,) = calls(evaluation, [evaluation.given if tensors is None else tensors])
    return result


def calls(evaluation: Evaluation, tensor_sets: list[Tensors]) -> list[torch.Tensor]:
    """Run the implementation on a valid problem once per set of tensors, one after the other (a contained
    implementation makes them all in one round trip to its worker)."""
    fn, kwargs = evaluation.case.impl.fn, evaluation.problem.kwargs()
    try:
        if len(tensor_sets) > 1 and hasattr(fn, "each"):
            return fn.each([(tuple(tensors), kwargs) for tensors in tensor_sets])
        return [fn(*tensors, **kwargs) for tensors in tensor_sets]
    except ContainmentError as exc:
        raise CallFailed(exc.as_finding()) from None
    except Exception as exc:  # noqa: BLE001  (any refusal of a valid problem is the finding)
        raise CallFailed(oracles.Finding("valid-refused", f"refused a valid problem: {raised(exc)}",
                                         error_details(exc))) from None


class Attempt(NamedTuple):
    """A call the implementation may refuse: it ``answered`` with ``result``, or it did not, and then
    ``failure`` says whether it crashed or hung (no refusal) or is None (it raised: a refusal)."""

    answered: bool
    result: Any = None
    failure: oracles.Finding | None = None


def prepared_ahead(case: Case, problems: list[Problem], name: str) -> list[Evaluation | None]:
    """The evaluations the check ``name`` will run on an example's ``problems`` (None: it prepares its own).
    Where the check declares ``calls_ahead`` and the implementation is contained, each one's plain call
    is made now, all in one round trip, and kept on it for :func:`attempt` (see ``ContainedCall.attempts``)."""
    registered, fn = CHECKS[name], case.impl.fn
    if not (registered.calls_ahead and len(problems) > 1 and hasattr(fn, "attempts")):
        return [None] * len(problems)
    evaluations = [registered.evaluation(case, registered.as_run(problem)) for problem in problems]
    answers = fn.attempts([(tuple(evaluation.given), evaluation.problem.kwargs()) for evaluation in evaluations])
    for evaluation, answer in zip(evaluations, answers or ()):
        evaluation.answered_ahead = Attempt(False) if isinstance(answer, Exception) else Attempt(True, answer)
    return evaluations


def attempt(evaluation: Evaluation) -> Attempt:
    """Call the implementation on a problem it may refuse (any exception), unless it was called ahead."""
    if evaluation.answered_ahead is not None:
        answered, evaluation.answered_ahead = evaluation.answered_ahead, None
        return answered
    try:
        return Attempt(True, evaluation.case.impl.fn(*evaluation.given, **evaluation.problem.kwargs()))
    except ContainmentError as exc:
        return Attempt(False, failure=exc.as_finding())
    except Exception:  # noqa: BLE001  (any exception is a refusal)
        return Attempt(False)


_TRACEBACK = "Traceback (most recent call last)"


def raised(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line for a finding: its type and its meaningful lines. A message of several lines
    keeps its first and its last (where a framework that wraps a Python traceback in its error, or a
    multi-line report, puts the reason); a traceback itself is left out. Cut at a word, never mid-word."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    first, last = (lines[0], lines[-1]) if lines else ("", "")
    if _TRACEBACK in first:
        first = first.split(_TRACEBACK)[0].rstrip(" :")
    message = " ... ".join(part for part in dict.fromkeys((first, last)) if part)
    # a contained implementation's refusal already names the exception raised in its worker
    name = "" if isinstance(exc, RaisedInWorker) else f"{type(exc).__name__}: "
    return name + textwrap.shorten(message, limit, placeholder=" [...]")


def error_details(exc: BaseException, lines: int = 12) -> dict[str, str]:
    """An exception's type and the last ``lines`` lines of its message, for a finding's details."""
    text = str(exc).strip().splitlines()
    return {"exception": type(exc).__name__, "message": "\n".join(text[-lines:])}


# Vacuous values (a dead channel, outputs that cancel to zero) are replaced by the values of other
# seeds, in a fixed order, so a stored problem replays the same way; the geometry is never changed.
RESEED_ATTEMPTS = 16


def reseeded(seed: int, attempt: int) -> int:
    return seed if attempt == 0 else (seed * 1_000_003 + attempt) % 2**31


def trusted(case: Case | None, problem: Problem, prepared: type[Evaluation] = Evaluation) -> Evaluation:
    """An evaluation of ``problem`` whose values make a value check meaningful (oracle 7)."""
    reason = None
    for attempt in range(RESEED_ATTEMPTS):
        evaluation = prepared(case, problem.replace(seed=reseeded(problem.seed, attempt)) if attempt else problem)
        reason = evaluation.vacuous_reason()
        if reason is None:
            return evaluation
    raise Untrusted(reason)


def never_runs(problem: Problem, name: str) -> str | None:
    """Why a stored problem could never run the check ``name`` (no seed gives meaningful values), or None."""
    registered = CHECKS[name]
    if not registered.compares_values:
        return None
    try:
        # the values alone decide: no case needed
        trusted(None, registered.problem(problem, problem.dtype), registered.evaluation)
    except Untrusted as untrusted:
        return str(untrusted)
    return None


def run_on(case: Case, problem: Problem, name: str,
           prepared: Evaluation | None = None) -> tuple[Evaluation, oracles.Finding | None]:
    """Run the check ``name`` on one problem (``prepared``: its evaluation from :func:`prepared_ahead`):
    the evaluation as run (values re-seeded where they were vacuous; what the check measured) and the
    finding, a refusal or crash included. Raises :class:`Untrusted` when no values make a value check
    meaningful."""
    registered = CHECKS[name]
    problem = registered.as_run(problem)
    evaluation = prepared if prepared is not None else \
        trusted(case, problem, registered.evaluation) if registered.compares_values else \
        registered.evaluation(case, problem)
    try:
        finding = registered.function(evaluation)
    except CallFailed as failed:
        return evaluation, failed.finding
    for key in registered.explain:
        if finding is not None and key in finding.details:
            finding.details["explanation"] = evaluation.explanation(finding.details[key])
    return evaluation, finding


# -- the checks -----------------------------------------------------------------------------------
def _shape_of(y: torch.Tensor, evaluation: Evaluation) -> oracles.Finding | None:
    return oracles.check_shape(y, evaluation.geometry.output_shape, evaluation.case.dtype, evaluation.case.device)


@check("shape", "test_shape", valid(), needs_values=False)
def shape(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 1: shape from the formula, the input's dtype and device; for shape-only implementations (meta
    kernels, FakeTensor), also the strides eager PyTorch gives the result, which a traced program relies on."""
    y = call(evaluation)
    finding = _shape_of(y, evaluation)
    if finding is None and evaluation.case.impl.shape_only:
        finding = oracles.check_strides(y, _eager_result(evaluation))
    return finding


def _eager_result(evaluation: Evaluation) -> torch.Tensor | None:
    """Eager PyTorch's result on the CPU for the same problem, in the same memory layouts (None where eager
    refuses it: there is nothing to compare)."""
    from convt_conformance.impls.torch_backends import functional

    x, w, b = evaluation.problem.materialize("cpu")
    try:
        return functional(x, w, b, **evaluation.problem.kwargs())
    except RuntimeError:
        return None


check("empty-batch", "test_empty_batch", valid(batch=0), needs_values=False)(shape)  # oracle 1 on a batch of 0


@check("exact", "test_exact", valid(value_kind="int", min_batch=1), replays="int", compares_values=True,
       explain=("first wrong element", "index"), evaluation=ExactEvaluation)
def exact(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 2: small-integer values; the float64 reference rounded to the dtype, exactly (for
    transform algorithms: within their allowance of it)."""
    y = call(evaluation)
    # a direct kernel is held to the rounded reference itself: its allowances need not be computed
    model = evaluation.error_model if evaluation.case.precision.transform else None
    return _shape_of(y, evaluation) or oracles.check_exact(y, evaluation.y_ref, evaluation.case.dtype, model)


@check("bound", "test_bound", valid(value_kind="real", min_batch=1), replays="real", compares_values=True,
       explain=("index",), also_finds=("statistical",))
def bound(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 3: random reals within the allowance and, for direct kernels, the statistical limit."""
    y = call(evaluation)
    finding = _shape_of(y, evaluation)
    if finding is None:
        finding, measured = oracles.check_bound(y, evaluation.y_ref, evaluation.error_model,
                                                evaluation.case.precision, evaluation.y_ref_without_bias)
        evaluation.measured.update(measured)
    return finding


_CONVOLUTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def forward_convolution(y: torch.Tensor, weight: torch.Tensor, problem: Problem,
                        input_size: tuple[int, ...]) -> torch.Tensor:
    """conv(y) with the same stride/padding/dilation/groups, in y's dtype, truncated to the input's
    size: when output_padding >= stride the convolution has positions beyond x, which never meet x
    in the inner product."""
    batched = y if problem.batched else y.unsqueeze(0)
    result = _CONVOLUTIONS[problem.dims](batched, weight, None, problem.stride, problem.padding,
                                         problem.dilation, problem.groups)
    result = result[(slice(None), slice(None)) + tuple(slice(0, L) for L in input_size)]
    return result if problem.batched else result[0]


@check("adjoint", "test_adjoint", valid(value_kind="real", min_batch=1), replays="real", compares_values=True,
       without_bias=True)
def adjoint(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 4: ``<conv(y), x> = <y, convT(x)>`` (without bias: the identity is for the linear map)."""
    problem = evaluation.problem
    x, w, _ = evaluation.values
    wide = torch.complex128 if x.is_complex() else torch.float64
    generator = torch.Generator().manual_seed(problem.seed ^ 0x5EED)
    y_probe = torch.randn(evaluation.geometry.output_shape, dtype=torch.float64, generator=generator).to(wide)
    conv_y = forward_convolution(y_probe, w.to(wide), problem, evaluation.geometry.input_size)
    convt_x = call(evaluation)
    finding = _shape_of(convt_x, evaluation)
    if finding is None:
        conv_terms = problem.weight_shape[1] * math.prod(problem.weight_shape[2:])
        finding = oracles.check_adjoint(conv_y, x, y_probe, convt_x, evaluation.error_model, conv_terms)
    return finding


@check("invalid-accepted", "test_invalid_raises", invalid, expects_invalid=True, needs_values=False,
       also_finds=("invalid-garbage",), calls_ahead=True)
def invalid_accepted(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 5a: a problem that breaks a validity rule must raise (any exception). Accepting it and
    returning anything but a reproducible tensor of the formula's shape is the severe kind
    ``invalid-garbage`` (uninitialized memory, a bias broadcast into extra channels), which a rule for
    the benign ``invalid-accepted`` never matches."""
    problem = evaluation.problem
    answered, y, failure = attempt(evaluation)
    if not answered:
        return failure
    accepted = f"accepted a problem that breaks {problem.broken_rule!r} and returned"
    garbage = _garbage(evaluation, y)
    facets = {"result": "empty" if isinstance(y, torch.Tensor) and y.numel() == 0 else "values"}
    if garbage:
        return oracles.Finding("invalid-garbage", f"{accepted} {garbage}", facets=facets)
    return oracles.Finding("invalid-accepted", f"{accepted} shape {tuple(y.shape)} {y.dtype}", facets=facets)


def _garbage(evaluation: Evaluation, y: object) -> str | None:
    """How the result of an accepted invalid problem is not a well-formed, reproducible tensor of the
    formula's shape, or None."""
    if not isinstance(y, torch.Tensor):
        return f"a {type(y).__name__}, not a tensor"
    expected = evaluation.problem.formula_output_shapes()
    # an empty result where the formula leaves no output holds no values, whatever its zero-length axes
    empty_for_empty = y.numel() == 0 and expected is not None and any(0 in shape for shape in expected)
    if expected is not None and tuple(y.shape) not in expected and not empty_for_empty:
        return f"shape {tuple(y.shape)} where the formula gives {' or '.join(map(str, expected))}"
    case = evaluation.case
    if case.impl.shape_only or not case.impl.is_deterministic(case.device):
        return None
    try:
        again = case.impl.fn(*evaluation.problem.materialize(case.device, values=evaluation.values),
                             **evaluation.problem.kwargs())
    except Exception as exc:  # noqa: BLE001  (accepted once, refused the second time: not reproducible)
        return f"shape {tuple(y.shape)} once, then raised {raised(exc)} on the same call"
    if not (isinstance(again, torch.Tensor) and again.shape == y.shape and again.dtype == y.dtype
            and torch.equal(oracles.bits(again.detach().cpu()), oracles.bits(y.detach().cpu()))):
        return f"shape {tuple(y.shape)} with values that differ between two identical calls (uninitialized memory?)"
    return None


@check("valid-refused", "test_valid_accepted", valid(), needs_values=False)
def valid_refused(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 5b: every valid problem is accepted."""
    call(evaluation)
    return None


def declares_a_domain(case: Case) -> str | None:
    return None if case.impl.domain else f"{case.impl.name} declares no domain narrower than PyTorch's"


@check("outside-domain", "test_outside_domain_refused", valid(inside_domain=False), needs_values=False,
       applies=declares_a_domain, also_finds=("shape",))
def outside_domain(evaluation: Evaluation) -> oracles.Finding | None:
    """A valid problem outside the implementation's declared domain: it may refuse it (any exception),
    which is what a narrower domain means; a crash or a hang is a finding, and a result it does return
    must have the formula's shape."""
    answered, y, failure = attempt(evaluation)
    if failure is not None:
        return failure
    evaluation.refused = not answered
    return _shape_of(y, evaluation) if answered else None


@check("inputs-unmodified", "test_inputs_unmodified", valid())
def inputs_unmodified(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 6: the call leaves its input, weight and bias bits (and strides) as they were."""
    tensors = evaluation.given
    before = [None if t is None else (oracles.bits(t).clone(), t.stride()) for t in tensors]
    call(evaluation, tensors)
    changed = [name for name, t, saved in zip(("input", "weight", "bias"), tensors, before)
               if t is not None and not (torch.equal(oracles.bits(t), saved[0]) and t.stride() == saved[1])]
    return oracles.Finding("inputs-unmodified", f"the call modified its {', '.join(changed)}") if changed else None


OTHER_LAYOUTS = ("channels_last", "noncontig_input", "noncontig_weight", "expanded_weight")


@check("layout", "test_layout_invariance", valid(value_kind="real", min_batch=1, layouts=OTHER_LAYOUTS),
       replays="real", compares_values=True, explain=("index",))
def layout(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 6: the same values in another memory layout agree with the contiguous result within
    both allowances (each lies within one allowance of the reference)."""
    problem = evaluation.problem
    plain = problem.materialize(evaluation.case.device, layout="contiguous", values=evaluation.values)
    y_laid, y_plain = calls(evaluation, [evaluation.given, plain])
    finding = _shape_of(y_laid, evaluation)
    if finding is None:
        finding = evaluation.error_model.exceedance("layout", y_laid, oracles.widen(y_plain), scale=2.0)
        if finding is not None:
            finding.summary = f"{problem.layout} and contiguous results differ: {finding.summary}"
    return finding


def _claims_special_values(case: Case) -> str | None:
    return None if case.impl.special_values else (f"{case.impl.name} declares special_values=False "
                                                  f"(IEEE inf/NaN semantics not claimed)")


@check("special-values", "test_special_values", valid(value_kind="special"), replays="special",
       explain=("first wrong element",), applies=_claims_special_values)
def special_values(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 6: NaN and +-Inf reach exactly the outputs the definition says."""
    problem = evaluation.problem
    y = call(evaluation)
    finding = _shape_of(y, evaluation)
    if finding is None:
        finite = Tensors(*(None if t is None else torch.where(torch.isfinite(t), t, torch.zeros((), dtype=t.dtype))
                           for t in evaluation.values))
        spread = non_finite_planes(evaluation) if evaluation.case.precision.transform else None
        finding = oracles.check_special_values(y, evaluation.y_ref, magnitude(finite, problem), evaluation.case.dtype,
                                               spread)
    return finding


def non_finite_planes(evaluation: Evaluation) -> torch.Tensor:
    """The output elements whose plane ``(n, c_out)`` a non-finite value feeds through a transform: any
    of the group's input channels of sample ``n``, any of ``c_out``'s kernels, or its bias."""
    x, w, b = evaluation.values
    problem = evaluation.problem
    x = x if problem.batched else x.unsqueeze(0)
    n, groups, cout_g = x.shape[0], problem.groups, w.shape[1]
    cin_g = w.shape[0] // groups
    bad_x = (~torch.isfinite(x)).flatten(2).any(-1).reshape(n, groups, cin_g).any(-1)  # (n, groups)
    bad_w = (~torch.isfinite(w)).flatten(2).any(-1).reshape(groups, cin_g, cout_g).any(1).reshape(1, -1)  # (1, Cout)
    planes = bad_x.repeat_interleave(cout_g, dim=1) | bad_w
    if b is not None:
        planes = planes | ~torch.isfinite(b).reshape(1, -1)
    planes = planes if problem.batched else planes[0]
    return planes.reshape(planes.shape + (1,) * problem.dims).expand(evaluation.geometry.output_shape)


def declared_deterministic(case: Case) -> str | None:
    return None if case.impl.is_deterministic(case.device) else \
        f"{case.impl.name} does not declare itself deterministic on {case.device}"


@check("determinism", "test_determinism", valid(), applies=declared_deterministic)
def determinism(evaluation: Evaluation) -> oracles.Finding | None:
    """Oracle 6: two identical calls give identical bits (for implementations that declare it)."""
    problem, device = evaluation.problem, evaluation.case.device
    fresh = [problem.materialize(device, values=evaluation.values) for _ in range(2)]  # each call its own copies
    first, second = map(oracles.bits, calls(evaluation, fresh))
    if first.shape == second.shape and torch.equal(first, second):
        return None
    differing = math.nan if first.shape != second.shape else int((first != second).sum())
    return oracles.Finding("determinism", f"two identical calls differ in {differing} element(s)")

