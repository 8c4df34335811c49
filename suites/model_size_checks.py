"""The model-size check: a problem as large as a real model's layer, checked without its whole reference.

- **Values at sampled positions** (:mod:`.sampled`): each within the error model's per-element allowance,
  from the ``M`` and ``K`` of that position (a transform algorithm: within its plane's normwise allowance,
  which bounds every element of the plane), and the RMS of the samples' errors, in units of a correct
  kernel's typical error, within the statistical limit.
- **Gradients sampled the same way**, for implementations that declare ``grad``: ``grad_input`` at input
  positions, ``grad_weight`` at weight positions, ``grad_bias`` whole (it is a sum over the output). Only
  where the plainest algorithm's work is within the search's work cap (:mod:`.sizes`: the default gate's, or
  the scale profile's) and the memory cap holds the gradients too: a backward costs twice the forward.
- **The adjoint identity with random vectors**: with ``g`` the output's gradient,
  ``<g, convT(x)> = <grad_input, x> = <grad_weight, w>``, all three from the implementation. Each error
  term is a random vector dotted with an error that does not depend on it (the forward's error depends on
  ``x`` and ``w`` only, ``grad_input``'s on ``g`` and ``w``, ``grad_weight``'s on ``x`` and ``g``), so it
  is a Gaussian of standard deviation at most the error's 2-norm, bounded from norms
  (:func:`.sampled.operator_norm_bound`). Eight standard deviations leave a false alarm at about 1e-15.

The search (``test_model_sizes``) draws problems near the catalog's layers and past the channel-block edges
(:mod:`.sizes`); ``test_catalog`` checks every catalog layer. Both skip a problem over the memory cap.
"""

from __future__ import annotations

import math
from functools import cached_property

import torch
from hypothesis import strategies as st

from convt_conformance.reference import batched

from . import catalog, oracles, sampled, sizes
from .backward_checks import differentiate
from .case import Case
from .checks import call, check
from .evaluation import Evaluation
from .problem import Problem
from .strategies import within_domain

MODEL_SIZE, GRADIENTS, ADJOINT = "model-size", "model-size-gradients", "model-size-adjoint"
ADJOINT_SIGMAS = 8.0
POSITIONS_SEED = 0x5A3B


class SampledEvaluation(Evaluation):
    """A problem prepared for the model-size check: its values, ``g``, and nothing of its whole reference."""

    @cached_property
    def grad_output(self) -> torch.Tensor:
        return self.problem.grad_output()

    @cached_property
    def given_grad_output(self) -> torch.Tensor:
        return self.grad_output.to(self.case.device, copy=True)

    def generator(self, salt: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.problem.seed ^ POSITIONS_SEED ^ salt)

    def vacuous_reason(self) -> str | None:
        return None  # random reals on many channels: no position is left out by cancellation


def with_gradients(case: Case) -> bool:
    """Whether the check differentiates too: the implementation declares grad, and per-element gradient
    allowances apply (not to a transform algorithm)."""
    return case.impl.differentiable(case.device) and not case.precision.transform


def model_size_draws(case: Case) -> st.SearchStrategy[list[Problem]]:
    drawn = sizes.model_size_problems(case.impl.dims, case.dtype_name, case.caps).filter(
        lambda problem: sizes.fits(problem, case.device, with_gradients(case)) is None)
    if case.impl.domain:
        drawn = within_domain(drawn, case.impl.outside_domain)
    return drawn.map(lambda problem: [problem])


def _searchable(case: Case) -> str | None:
    if case.impl.fixed_geometries:
        return f"{case.impl.name} compiles per shape: the catalog's layers check it at model sizes"
    return None


@check(MODEL_SIZE, "test_model_sizes", model_size_draws, needs_values=False, explain=("index",),
       also_finds=(GRADIENTS, ADJOINT), evaluation=SampledEvaluation, applies=_searchable)
def model_size(evaluation: Evaluation) -> oracles.Finding | None:
    """Model sizes: values and gradients at sampled positions, and the adjoint identity with random vectors."""
    case = evaluation.case
    if case.impl.shape_only:
        return _shape_of(call(evaluation), evaluation)
    differentiated = with_gradients(case) and catalog.plain_work(evaluation.problem) <= case.caps.work and \
        sizes.fits(evaluation.problem, case.device, gradients=True) is None
    got = differentiate(evaluation, "output-and-first") if differentiated else {"output": call(evaluation)}
    finding = _shape_of(got["output"], evaluation) or forward_values(evaluation, got["output"])
    if finding is None and differentiated:
        finding = gradient_values(evaluation, got) or adjoint_identity(evaluation, got)
    return finding


def _shape_of(y: torch.Tensor, evaluation: Evaluation) -> oracles.Finding | None:
    return oracles.check_shape(y, evaluation.geometry.output_shape, evaluation.case.dtype, evaluation.case.device)


# -- values at sampled positions ------------------------------------------------------------------------------
def forward_values(evaluation: Evaluation, y: torch.Tensor) -> oracles.Finding | None:
    geometry, (x, w, b) = evaluation.geometry, evaluation.values
    xb, yb = batched(x, geometry), batched(y, geometry)
    rows = sampled.output_positions(geometry, evaluation.generator(1))
    ref = sampled.forward_at(xb, w, b, geometry, rows)
    without_bias = None if b is None else ref.value - oracles.widen(b)[rows[:, 1]]
    prec = evaluation.case.precision
    if prec.transform:
        allowed, typical = _transform_allowances(evaluation, xb, rows, ref, without_bias)
    else:
        allowed = oracles.allowance(ref.M, ref.K, ref.value, prec, without_bias)
        typical = oracles.statistical_scale(ref.value, ref.M, ref.K, prec, without_bias)
    lead = 0 if geometry.batched else 1  # an unbatched output has no batch index
    return _compare(evaluation, MODEL_SIZE, "output", rows, sampled.at(yb, rows), ref, allowed, typical, lead)


def _transform_allowances(evaluation: Evaluation, xb: torch.Tensor, rows: torch.Tensor, ref: sampled.Sampled,
                          without_bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A transform algorithm's allowance at the sampled positions: its plane's normwise allowance (which bounds
    every element of the plane), with the output rounding's norm bounded by Young's inequality
    (``||convT(x_c, w_c)||_2 <= ||x_c||_2 ||w_c||_1 <= B``); and its typical error there."""
    geometry, prec, (_, w, b) = evaluation.geometry, evaluation.case.precision, evaluation.values
    B, B2 = oracles.transform_norms(oracles.widen(xb), oracles.widen(w), geometry.groups)
    log2_n = oracles.transform_log2_size(geometry.full_size())
    plane = math.prod(geometry.output_size)
    bias = torch.zeros(B.shape[1], dtype=torch.float64) if b is None else oracles.magnitude_of(oracles.widen(b))
    rounding = prec.u_out * (2 * B + bias * math.sqrt(plane)) + 2 * prec.tiny_out * math.sqrt(plane)
    planes = oracles.transform_coefficient(log2_n, geometry.in_channels_per_group, prec) * B + rounding
    n, c = rows[:, 0], rows[:, 1]
    typical = (oracles.output_rounding(ref.value, prec, without_bias)
               + oracles.transform_spread(B2, log2_n, plane, prec)[n, c]
               + oracles.REFERENCE_ROUNDOFF * ref.K.sqrt() * ref.M)
    return planes[n, c], typical


def _compare(evaluation: Evaluation, kind: str, what: str, rows: torch.Tensor, got: torch.Tensor,
             ref: sampled.Sampled, allowed: torch.Tensor, typical: torch.Tensor | None = None,
             lead: int = 0) -> oracles.Finding | None:
    """The sampled elements against their allowances (and, with ``typical``, the statistical limit)."""
    error = torch.nan_to_num((got - ref.value).abs(), nan=math.inf)
    ratio = oracles.error_ratio(error, allowed)
    rms = oracles.rms_where_live(error / typical, ref.M) if typical is not None else 0.0
    if kind == MODEL_SIZE:
        evaluation.measured.update({"max": float(ratio.max()) if ratio.numel() else 0.0, "rms": rms})
    exceeded = ~(error <= allowed)
    facets = {"gradients": [what]} if kind == GRADIENTS else {}
    # an output index gets the definition's terms explained (the check's ``explain``); a gradient's is its own
    where = "index" if kind == MODEL_SIZE else f"grad_{what} index"
    if exceeded.any():
        worst = oracles.worst_element(got, ref.value, allowed, ref.M, ref.K, evaluation.case.dtype)
        worst[where] = rows[worst.pop("index")[0]].tolist()[lead:]
        facets.update(oracles.wrong_facets(got, ref.value, exceeded), ratio=float(ratio.max()))
        return oracles.Finding(kind, f"{what}: {int(exceeded.sum())} of {len(rows)} sampled elements exceed the "
                               f"rounding-error allowance (worst {float(ratio.max()):.3g}x)",
                               {**worst, "sampled": len(rows)}, facets=facets)
    if rms > oracles.STATISTICAL_RMS_LIMIT:
        worst = int(torch.argmax(error / typical))
        number = lambda t: t.item() if not t.is_complex() else str(t.item())  # noqa: E731  (JSON has no complex)
        details = {"rms": rms, where: rows[worst].tolist()[lead:], "got": number(got[worst]),
                   "expected": number(ref.value[worst]), "sampled": len(rows)}
        return oracles.Finding(kind, f"{what}: RMS of the sampled elements' error in units of a correct kernel's "
                               f"typical error is {rms:.3g} (limit {oracles.STATISTICAL_RMS_LIMIT}): lower-precision "
                               f"arithmetic than declared", details,
                               facets={**facets, "ratio": rms / oracles.STATISTICAL_RMS_LIMIT})
    return None


def gradient_values(evaluation: SampledEvaluation, got: dict[str, torch.Tensor | None]) -> oracles.Finding | None:
    """``grad_input``, ``grad_weight`` at sampled positions and ``grad_bias`` whole, each within its allowance."""
    geometry, prec, (x, w, b) = evaluation.geometry, evaluation.case.precision, evaluation.values
    xb, gb = batched(x, geometry), batched(evaluation.grad_output, geometry)
    missing = [name for name in ("input", "weight") + (("bias",) if b is not None else ()) if got.get(name) is None]
    if missing:
        return oracles.Finding(GRADIENTS, f"no gradient returned for {', '.join(missing)}",
                               facets={"gradients": missing})
    samples = {"input": (sampled.input_positions(geometry, evaluation.generator(2)), batched(got["input"], geometry)),
               "weight": (sampled.weight_positions(geometry, evaluation.generator(3)), got["weight"])}
    for name, (rows, grad) in samples.items():
        ref = sampled.grad_input_at(gb, w, geometry, rows) if name == "input" else \
            sampled.grad_weight_at(xb, gb, geometry, rows)
        finding = _compare(evaluation, GRADIENTS, name, rows, sampled.at(grad, rows), ref,
                           oracles.allowance(ref.M, ref.K, ref.value, prec))
        if finding is not None:
            return finding
    if b is None:
        return None
    g64 = oracles.widen(gb).transpose(0, 1).flatten(1)
    count = torch.full((g64.shape[0],), float(g64.shape[1]), dtype=torch.float64)
    ref = sampled.Sampled(torch.arange(g64.shape[0]).unsqueeze(1), g64.sum(1), oracles.magnitude_of(g64).sum(1), count)
    return _compare(evaluation, GRADIENTS, "bias", ref.positions, oracles.widen(got["bias"]), ref,
                    oracles.allowance(ref.M, ref.K, ref.value, prec))


# -- the adjoint identity -------------------------------------------------------------------------------------
def _dot(a: torch.Tensor, b: torch.Tensor) -> tuple[complex | float, float]:
    """``<a, b>`` (bilinear) in float64 and a bound of its own rounding error."""
    a64, b64 = oracles.widen(a).flatten(), oracles.widen(b).flatten()
    n = a64.numel()
    # |fl(<a, b>) - <a, b>| <= gamma_n sum |a_i b_i| <= gamma_n ||a|| ||b|| (twice for complex parts)
    rounding = 2 * n * 2.0**-53 / (1 - n * 2.0**-53) * float(a64.norm() * b64.norm())
    return torch.dot(a64, b64).item(), rounding


def _norm(t: torch.Tensor) -> float:
    """The 2-norm in float64 (of ``|re| + |im|`` for complex values, which bounds every real product's size)."""
    wide = oracles.widen(t)
    return float(oracles.magnitude_of(wide).norm() if wide.is_complex() else wide.norm())


def _error_norm(terms: int, size: float, elements: int, prec: oracles.Precision) -> float:
    """A bound of the 2-norm of a direct kernel's error over a tensor whose elements sum at most ``terms`` terms,
    from ``size``, a bound of the 2-norms of both its ``M`` and its exact value: the per-element allowance, in
    norms."""
    gamma = float(oracles.gamma(torch.tensor(float(terms)), prec.u_acc))
    per_gamma, plain = oracles.allowance_factors(prec)
    floor = (prec.tiny_acc * terms + 2 * prec.tiny_out) * math.sqrt(elements)
    return (per_gamma * gamma + plain) * size + 2 * prec.u_out * size + floor


def adjoint_identity(evaluation: SampledEvaluation, got: dict[str, torch.Tensor]) -> oracles.Finding | None:
    """``<g, convT(x)> = <grad_input, x> = <grad_weight, w>`` on the whole tensors (module docstring)."""
    geometry, prec, (x, w, b) = evaluation.geometry, evaluation.case.precision, evaluation.values
    g = evaluation.grad_output
    y = oracles.widen(got["output"])
    linear = y if b is None else y - oracles.widen(b).reshape((-1,) + (1,) * geometry.dims)
    # autograd's gradients of complex values are conjugate transposes: <conj(g), y> = <conj(grad_x), x>
    forward, forward_rounding = _dot(g.conj(), linear)
    op = sampled.operator_norm_bound(w, geometry)
    out_elements = math.prod(geometry.output_shape)
    bias_norm = 0.0 if b is None else _norm(b) * math.sqrt(out_elements / geometry.out_channels)
    forward_terms, input_terms, weight_terms = sampled.most_terms(geometry)
    spread_x, spread_g = op * _norm(x) + bias_norm, op * _norm(g)
    errors = {"forward": _error_norm(forward_terms + (b is not None), spread_x, out_elements, prec),
              "input": _error_norm(input_terms, spread_g, x.numel(), prec)}
    weight_size = sampled.grad_weight_magnitude_bound(batched(x, geometry), batched(g, geometry), geometry)
    errors["weight"] = _error_norm(weight_terms, weight_size, w.numel(), prec)
    sigmas = ADJOINT_SIGMAS * (math.sqrt(2) if prec.is_complex else 1.0)
    for name, tensor in (("input", x), ("weight", w)):
        other, other_rounding = _dot(got[name].conj(), tensor)
        allowed = sigmas * (errors["forward"] + errors[name]) + forward_rounding + other_rounding
        difference = abs(forward - other)
        if not difference <= allowed:
            ratio = difference / allowed if allowed else math.inf
            return oracles.Finding(ADJOINT, f"<g, convT(x)> and <grad_{name}, {'x' if name == 'input' else 'w'}> "
                                   f"differ by {difference:.3g} ({ratio:.3g}x the allowance)",
                                   {"<g, convT(x)>": str(forward), f"<grad_{name}, ...>": str(other),
                                    "allowance": allowed}, facets={"gradients": [name], "ratio": ratio})
    return None
