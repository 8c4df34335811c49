"""What each check demands, one function per property, and the error analysis behind the allowances.

Every function compares an implementation's result with what the definition demands and returns a
:class:`Finding` (a discrepancy) or None. None of them knows about Hypothesis or pytest.

Error model (``shared/research/tolerance-model.md``; Higham, *Accuracy and Stability*, §3.1): a sum of
``K`` products computed in a type with unit roundoff ``u`` in *any* order satisfies
``|fl(s) - s| <= gamma_K(u) * M`` with ``gamma_K = K*u / (1 - K*u)`` and ``M`` the sum of the terms'
magnitudes. The allowance per element is

    (2*gamma_K(u_acc) + 2.5*u_in) * M  +  u_out * (|y_ref| + |s_ref|)  +  tiny_acc * K  +  2*tiny_out

``u_in``: rounding of the inputs inside the kernel (TF32: 2^-10, else 0); ``u_out``: rounding to the
output dtype, once for the result and, with a bias, once more for the bias-free sum ``s_ref`` (PyTorch
rounds the convolution to the output type and then adds the bias); ``tiny_acc * K`` covers underflow of
the products (gradual underflow adds at most the smallest normal per operation) and ``tiny_out`` half
the output's subnormal spacing, per output rounding.

Complex kernels may form products with the 3-multiplication (Gauss) trick: ``Im = (a+b)(c+d) - ac - bd``.
With ``M = convT(|re|+|im|, |re|+|im|)`` each of the three real sums errs by at most
``(gamma_K + 2u) * M`` (the two input sums round once each), and the two subtractions add at most
``3u * M`` and ``2u * M``: hence ``(4*gamma_K + 8u) * M`` for complex (a safe, first-order bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

TF32_ROUNDOFF = 2.0**-10  # TF32 keeps 10 mantissa bits; 2^-10 also covers truncation
_REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}
_MANTISSA_BITS = {torch.float64: 53, torch.float32: 24, torch.float16: 11, torch.bfloat16: 8}


@dataclass(frozen=True)
class Precision:
    """Unit roundoffs of one (implementation, dtype): inputs inside the kernel, accumulation, output."""

    u_in: float
    u_acc: float
    u_out: float
    tiny_acc: float
    tiny_out: float
    is_complex: bool


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    return _REAL_OF.get(dtype, dtype)


def unit_roundoff(dtype: torch.dtype) -> float:
    return 2.0 ** -_MANTISSA_BITS[real_dtype(dtype)]


def precision_of(dtype: torch.dtype, tf32: bool = False,
                 accumulation: torch.dtype | None = None) -> Precision:
    """The precision model of the tolerance notes: half types accumulate in float32 unless the
    implementation declares otherwise; TF32 only where it declares it (and only for float32)."""
    real = real_dtype(dtype)
    acc = real_dtype(accumulation) if accumulation is not None else (
        torch.float32 if real in (torch.float16, torch.bfloat16) else real)
    u_in = TF32_ROUNDOFF if tf32 and real == torch.float32 else 0.0
    return Precision(u_in=u_in, u_acc=unit_roundoff(acc), u_out=unit_roundoff(real),
                     tiny_acc=torch.finfo(acc).tiny, tiny_out=torch.finfo(real).smallest_normal
                     * unit_roundoff(real), is_complex=dtype.is_complex)


def gamma(K: torch.Tensor, u: float) -> torch.Tensor:
    """Higham's ``gamma_K = K*u / (1 - K*u)``; infinite where ``K*u >= 1`` (no meaningful bound)."""
    Ku = K * u
    return torch.where(Ku < 1, Ku / (1 - Ku).clamp_min(1e-300), torch.full_like(Ku, math.inf))


def _size(t: torch.Tensor) -> torch.Tensor:
    return t.real.abs() + t.imag.abs() if t.is_complex() else t.abs()


def allowance(M: torch.Tensor, K: torch.Tensor, y_ref: torch.Tensor, prec: Precision,
              y_ref_without_bias: torch.Tensor | None = None) -> torch.Tensor:
    """The per-element rounding-error allowance (module docstring), float64, shaped like ``y_ref``.

    With a bias, a kernel may round the bias-free sum ``s`` to the output type before adding the
    bias (PyTorch adds the bias as a separate operation): that second rounding adds ``u_out * |s|``.
    """
    g = gamma(K, prec.u_acc)
    factor = 4 * g + 8 * prec.u_acc + 5 * prec.u_in if prec.is_complex else 2 * g + 2.5 * prec.u_in
    output_rounding = prec.u_out * _size(y_ref)
    if y_ref_without_bias is not None:
        output_rounding = output_rounding + prec.u_out * _size(y_ref_without_bias)
    return factor * M + output_rounding + prec.tiny_acc * K + 2 * prec.tiny_out


@dataclass
class Finding:
    """One discrepancy: which check, a one-line summary and the details a person needs."""

    check: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    picture: dict[str, Any] | None = None  # the error over the output slice holding the worst element

    def render(self) -> str:
        lines = [f"{self.check}: {self.summary}"]
        for key, value in self.details.items():
            lines.append(f"  {key}: " + str(value).replace("\n", "\n    "))
        return "\n".join(lines)


def widen(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", torch.complex128 if t.is_complex() else torch.float64)


def spacing(value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The distance between neighbouring ``dtype`` numbers around ``value`` (its ulp), float64."""
    real = real_dtype(dtype)
    info = torch.finfo(real)
    magnitude = value.abs().clamp_min(info.smallest_normal)
    exponent = torch.floor(torch.log2(magnitude))
    return torch.pow(2.0, exponent - (_MANTISSA_BITS[real] - 1))


def worst_element(y: torch.Tensor, y_ref: torch.Tensor, allowed: torch.Tensor,
                  M: torch.Tensor, K: torch.Tensor, dtype: torch.dtype) -> dict[str, Any]:
    """The element with the largest error in units of its allowance, with everything about it."""
    error = (y - y_ref).abs()
    ratio = error / allowed
    flat = int(torch.argmax(torch.nan_to_num(ratio, nan=math.inf)))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), y.shape))
    ulps = (error[index] / spacing(y_ref.real[index] if y_ref.is_complex() else y_ref[index], dtype)).item()
    return {"index": list(index), "got": _scalar(y[index]), "expected": _scalar(y_ref[index]),
            "error": error[index].item(), "allowance": allowed[index].item(),
            "error/allowance": ratio[index].item(), "ulps": ulps, "M": M[index].item(),
            "K": int(K[index].item())}


def _scalar(value: torch.Tensor) -> float | str:
    item = value.item()
    return str(item) if isinstance(item, complex) else item


def error_picture(error: torch.Tensor, index: tuple[int, ...], title: str, window: int = 48) -> dict[str, Any]:
    """The last two axes of ``error`` through ``index`` (one row for 1d outputs), cropped to a
    ``window`` around the worst element: plain lists, for the report's picture."""
    lead = index[:-2] if error.dim() >= 2 else ()
    plane = error[lead] if lead else error
    plane = plane.reshape(1, -1) if plane.dim() == 1 else plane
    row, col = (index[-2], index[-1]) if error.dim() >= 2 else (0, index[-1])
    top, left = max(row - window // 2, 0), max(col - window // 2, 0)
    crop = plane[top:top + window, left:left + window].to(torch.float64)
    values = [[None if not math.isfinite(v) else v for v in line] for line in crop.tolist()]
    axes = [f"axis {error.dim() - 2}", f"axis {error.dim() - 1}"] if error.dim() >= 2 else ["", "axis 0"]
    return {"title": title, "values": values, "marked": [row - top, col - left], "origin": [top, left],
            "slice": list(lead), "axes": axes}


def check_shape(y: torch.Tensor, expected_shape: tuple[int, ...], dtype: torch.dtype,
                device: str) -> Finding | None:
    """Output shape from the formula, the input's dtype, and the input's device."""
    problems = []
    if tuple(y.shape) != tuple(expected_shape):
        problems.append(f"shape {tuple(y.shape)} != {tuple(expected_shape)}")
    if y.dtype != dtype:
        problems.append(f"dtype {y.dtype} != {dtype}")
    if y.device.type != torch.device(device).type:
        problems.append(f"device {y.device} != {device}")
    if problems:
        return Finding("shape", "; ".join(problems), {"expected shape": list(expected_shape)})
    return None


def check_exact(y: torch.Tensor, y_ref: torch.Tensor, dtype: torch.dtype) -> Finding | None:
    """Exact tier: every partial sum is representable, so the result must equal the float64
    reference rounded to ``dtype`` exactly (``-0.0 == 0.0``: the sign of a zero sum depends on the
    order of summation and is not part of the contract)."""
    expected = y_ref.to(dtype)
    y_cpu = y.detach().cpu()
    if y_cpu.shape == expected.shape and torch.equal(y_cpu, expected):
        return None
    if y_cpu.shape != expected.shape:
        return Finding("exact", f"shape {tuple(y_cpu.shape)} != {tuple(expected.shape)}")
    wrong = y_cpu != expected
    index = tuple(int(i) for i in wrong.nonzero()[0])
    difference = (y_cpu.to(y_ref.dtype) - y_ref).abs()
    return Finding("exact", f"{int(wrong.sum())} of {wrong.numel()} elements differ from the exact "
                   f"integer answer", {"first wrong element": list(index),
                                       "got": _scalar(y_cpu[index].to(y_ref.dtype)),
                                       "expected": _scalar(y_ref[index])},
                   error_picture(torch.nan_to_num(difference, nan=math.inf), index, "|got - exact|"))


# Calibrated with benchmarks/calibrate_statistical.py (150 problems per row, 2-core x86-64, torch 2.13
# CPU): every correct implementation and dtype stays below 0.75; simulated TF32 inputs reach ~4e3 and
# half-precision accumulation ~30.
STATISTICAL_RMS_LIMIT = 4.0


def check_bound(y: torch.Tensor, y_ref: torch.Tensor, M: torch.Tensor, K: torch.Tensor,
                prec: Precision, dtype: torch.dtype,
                y_ref_without_bias: torch.Tensor | None = None) -> tuple[Finding | None, dict[str, float]]:
    """Bound tier (hard, per element) and statistical tier (per tensor). Returns the finding and
    the normalized-error statistics (for ``hypothesis.target``)."""
    y64 = widen(y)
    allowed = allowance(M, K, y_ref, prec, y_ref_without_bias)
    error = (y64 - y_ref).abs()
    if error.numel() == 0:
        return None, {"max": 0.0, "rms": 0.0}
    ratio_max = float(torch.nan_to_num(error / allowed, nan=math.inf).max())
    rms = statistical_rms(y64, y_ref, M, K, prec)
    stats = {"max": ratio_max, "rms": rms}
    finding = exceedance("bound", y64, y_ref, allowed, M, K, dtype)
    if finding is not None:
        return finding, stats
    if rms > STATISTICAL_RMS_LIMIT:
        return Finding("statistical", f"RMS of the normalized error is {rms:.3g} (limit "
                       f"{STATISTICAL_RMS_LIMIT}): lower-precision arithmetic than declared "
                       f"(e.g. TF32 or half-precision accumulation)", {"rms": rms}), stats
    return None, stats


def exceedance(check: str, y: torch.Tensor, target: torch.Tensor, allowed: torch.Tensor,
               M: torch.Tensor, K: torch.Tensor, dtype: torch.dtype) -> Finding | None:
    """A finding when some element of ``y`` lies farther than ``allowed`` from ``target``."""
    y64 = widen(y)
    exceeded = ~((y64 - target).abs() <= allowed)  # NaN counts as exceeding
    if not exceeded.any():
        return None
    worst = worst_element(y64, target, allowed, M, K, dtype)
    ratio = torch.nan_to_num((y64 - target).abs() / allowed, nan=math.inf)
    picture = error_picture(ratio, tuple(worst["index"]), "error / allowance")
    return Finding(check, f"{int(exceeded.sum())} of {exceeded.numel()} elements exceed the "
                   f"rounding-error allowance (worst {worst['error/allowance']:.3g}x)", worst, picture)


def statistical_rms(y64: torch.Tensor, y_ref: torch.Tensor, M: torch.Tensor, K: torch.Tensor,
                    prec: Precision) -> float:
    """RMS over elements with ``M > 0`` of ``|y - y_ref| / (sqrt(K)*u_acc*M + u_out*|y_ref|)``: the
    error in units of its *typical* size (Higham & Mary's probabilistic bound grows like sqrt(K))."""
    live = M > 0
    if not live.any():
        return 0.0
    size = y_ref.real.abs() + y_ref.imag.abs() if y_ref.is_complex() else y_ref.abs()
    scale = (K.sqrt() * (prec.u_acc + prec.u_in) * M + prec.u_out * size + prec.tiny_out)[live]
    normalized = (y64 - y_ref).abs()[live] / scale
    return float(normalized.pow(2).mean().sqrt())


def check_adjoint(conv_y: torch.Tensor, x: torch.Tensor, y_probe: torch.Tensor, convt_x: torch.Tensor,
                  M_nobias: torch.Tensor, K: torch.Tensor, conv_terms: int,
                  prec: Precision) -> Finding | None:
    """Adjoint identity ``<conv(y), x> = <y, convT(x)>`` (bilinear: no conjugation).

    ``conv_y`` is the float64 forward convolution of ``y_probe``, already truncated to ``x``'s shape;
    ``convt_x`` is the implementation's result. Allowance: the implementation's per-element error,
    weighted by ``|y|`` (that is, scaled by ``S = <|y|, M>`` and never divided by ``|<conv(y), x>|``),
    plus the float64 rounding of both inner products.
    """
    x64, y64, t64 = widen(x), widen(y_probe), widen(convt_x)
    a = (conv_y * x64).sum().item()
    b = (y64 * t64).sum().item()
    per_element = allowance(M_nobias, K, t64, prec)
    S = (y64.abs() * M_nobias).sum().item()
    u64 = 2.0**-53
    n = conv_terms + max(x64.numel(), y64.numel())
    double_rounding = 2 * n * u64 / (1 - n * u64) * (2 * S + (y64.abs() * t64.abs()).sum().item())
    allowed = (y64.abs() * per_element).sum().item() + double_rounding
    if not abs(a - b) <= allowed:
        return Finding("adjoint", f"<conv(y), x> and <y, convT(x)> differ by {abs(a - b):.3g} "
                       f"(allowance {allowed:.3g}, {abs(a - b) / allowed:.3g}x)",
                       {"<conv(y), x>": str(a), "<y, convT(x)>": str(b), "S": S})
    return None


def check_special_values(y: torch.Tensor, y_ref: torch.Tensor, M_finite: torch.Tensor,
                         dtype: torch.dtype) -> Finding | None:
    """Non-finite values follow the definition: NaN where the reference is NaN, the same signed
    infinity where it is infinite, finite wherever the finite terms cannot overflow ``dtype``.
    Complex results are checked only for finiteness (the part-wise IEEE rules of complex products
    differ between kernels)."""
    y64 = widen(y)
    limit = torch.finfo(real_dtype(dtype)).max / 2  # room for the rounding of the largest sum
    if y_ref.is_complex():
        ref_finite, got_finite = torch.isfinite(y_ref), torch.isfinite(y64)
        demanded = ~ref_finite | (M_finite <= limit)
        wrong = demanded & (ref_finite != got_finite)
    else:
        demanded = ~torch.isfinite(y_ref) | (M_finite <= limit)
        same = (torch.isnan(y_ref) & torch.isnan(y64)) | (torch.isinf(y_ref) & (y64 == y_ref)) | (
            torch.isfinite(y_ref) & torch.isfinite(y64))
        wrong = demanded & ~same
    if not wrong.any():
        return None
    index = tuple(int(i) for i in wrong.nonzero()[0])
    return Finding("special-values", f"{int(wrong.sum())} of {wrong.numel()} elements break the "
                   f"non-finite pattern of the definition", {
                       "first wrong element": list(index), "got": _scalar(y64[index]),
                       "expected": _scalar(y_ref[index])})


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bit patterns of ``t`` (so NaNs compare equal to identical NaNs)."""
    t = t.detach().cpu().contiguous()
    if t.is_complex():
        t = torch.view_as_real(t)
    return t.view({8: torch.int64, 4: torch.int32, 2: torch.int16}[t.element_size()])


def untrusted_reason(y_ref: torch.Tensor, x: torch.Tensor, w: torch.Tensor,
                     taps_landing: bool) -> str | None:
    """Why a value check on this problem would prove little (benchdnn's "mistrusted"), or None."""
    if y_ref.numel() == 0:
        return "empty output"
    if (y_ref == 0).float().mean().item() > 0.5:
        return "output mostly exact zeros"
    if not taps_landing:
        return "a kernel tap never reaches the output"
    batched_x = x if x.dim() == w.dim() else x.unsqueeze(0)
    dims_x = [0] + list(range(2, batched_x.dim()))
    dead_input = (batched_x != 0).sum(dim=dims_x) == 0
    dead_weight = (w != 0).flatten(1).sum(dim=1) == 0
    if batched_x.shape[0] and (dead_input | dead_weight).any():
        return "an input channel never contributes"
    return None
