"""A test problem: every parameter, the layout and the kind of values, rebuildable from its seed.

A :class:`Problem` is plain data (it round-trips through JSON), so a failing one can be stored,
replayed and reported. ``materialize`` turns it into tensors; values depend only on the problem.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from convt_conformance import spec
from convt_conformance.reference import plus_bias, reference_sum

from . import gradients, oracles

LAYOUTS = ("contiguous", "channels_last", "noncontig_input", "noncontig_weight", "expanded_weight")
# Largest integer below which every integer is exact, per output dtype (2^(mantissa bits + 1)).
EXACT_INTEGER_LIMIT = {"float64": 2.0**53, "float32": 2.0**24, "float16": 2.0**11, "bfloat16": 2.0**8,
                       "complex128": 2.0**53, "complex64": 2.0**24}
SMALL_INTEGER_RANGE = {"float16": 4, "bfloat16": 2}  # others draw integers in [-8, 8]
# fields that change values or memory, never the geometry
_VALUES_ONLY = {"seed", "weight_seed", "value_kind", "layout"}
GRAD_OUTPUT_SEED, PROBE_SEED = 0x9AD0, 0x9B0E  # mixed into the problem's seed: g and the probes get their own values
WEIGHT_SEED = 0x3E16  # mixed into a pooled weight's seed (``weight_seed``)


class Tensors(NamedTuple):
    input: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor | None


@dataclass(frozen=True)
class Problem:
    """One call of ``conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
    dilation)``. Valid problems are built by the strategies; an invalid one names the rule it breaks."""

    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    bias: bool
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    dtype: str
    value_kind: str = "real"  # "int", "real" or "special" (see tensors())
    layout: str = "contiguous"
    seed: int = 0
    # the seed of the weight and bias values when they come from a small pool (``fixed_weights``); else None
    weight_seed: int | None = None
    # Only invalid problems use these: a mismatched dtype, a wrong bias shape, the rule broken.
    weight_dtype: str | None = None
    bias_dtype: str | None = None
    bias_shape: tuple[int, ...] | None = None
    broken_rule: str | None = None

    @property
    def dims(self) -> int:
        return len(self.weight_shape) - 2

    @property
    def batched(self) -> bool:
        return len(self.input_shape) == self.dims + 2

    @property
    def out_channels(self) -> int:
        return self.weight_shape[1] * self.groups

    def geometry(self) -> spec.Geometry:
        """The validated geometry (raises :class:`spec.InvalidProblem` for invalid problems),
        validated once per problem: an example asks for it several times."""
        known = self.__dict__.get("_geometry")
        if known is None:
            bias_shape = (self.bias_shape or (self.out_channels,)) if self.bias else None
            dtypes = [self.dtype, self.weight_dtype or self.dtype] + (
                [self.bias_dtype or self.dtype] if self.bias else [])
            known = spec.check_arguments(self.input_shape, self.weight_shape, bias_shape, **self.kwargs(),
                                         dtypes=[spec.DTYPES[d] for d in dtypes])
            object.__setattr__(self, "_geometry", known)  # a cache, not a field: equality and JSON ignore it
        return known

    def formula_lengths(self) -> tuple[int, ...] | None:
        """The output length formula per axis, for invalid problems too (negative lengths included), or
        None where a per-axis tuple has the wrong length."""
        axes = [spec.per_axis(value, self.dims) for value in (self.stride, self.padding, self.output_padding,
                                                               self.dilation)]
        if any(len(values) != self.dims for values in axes):
            return None
        return spec.output_size(self.input_shape[-self.dims:], self.weight_shape[2:], *axes)

    def formula_output_shapes(self) -> list[tuple[int, ...]] | None:
        """The output shapes the formula allows even for an invalid problem (lengths below 0 as 0), or
        None where it gives none (a per-axis tuple of the wrong length, groups below 1): what a kernel
        that accepts an invalid problem may fairly return; anything else is garbage. An empty axis
        allows two: the formula's ``(L-1)*s + 1`` for the stride-dilated input, and 0, which is what
        a dilated empty array has in XLA."""
        lengths = self.formula_lengths()
        if self.groups < 1 or lengths is None:
            return None
        per_axis = []
        for length, L, s in zip(lengths, self.input_shape[-self.dims:], spec.per_axis(self.stride, self.dims)):
            choices = {length, length + s - 1} if L == 0 else {length}
            per_axis.append(sorted({max(0, c) for c in choices}))
        lead = ((self.input_shape[0],) if self.batched else ()) + (self.out_channels,)
        return [lead + lengths for lengths in itertools.product(*per_axis)]

    def kwargs(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding, "output_padding": self.output_padding,
                "groups": self.groups, "dilation": self.dilation}

    def replace(self, **changes: Any) -> "Problem":
        replaced = dataclasses.replace(self, **changes)
        if "_geometry" in self.__dict__ and changes.keys() <= _VALUES_ONLY:  # the same validated geometry
            object.__setattr__(replaced, "_geometry", self.__dict__["_geometry"])
        return replaced

    # -- serialization ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Problem":
        if isinstance(data, dict) and "values" in data and "value_kind" not in data:  # the field's former name
            data = {("value_kind" if k == "values" else k): v for k, v in data.items()}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown problem fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def describe(self) -> str:
        """A compact one-line description in the spirit of benchdnn's problem descriptors."""
        batch = f"n{self.input_shape[0]}" if self.batched else "unbatched"
        cin = self.input_shape[1 if self.batched else 0]
        parts = [f"{self.dims}d", batch, f"c{cin}->{self.out_channels}", f"g{self.groups}",
                 f"L{_axes(self.input_shape[-self.dims:])}", f"k{_axes(self.weight_shape[2:])}",
                 f"s{_axes(self.stride)}", f"p{_axes(self.padding)}", f"op{_axes(self.output_padding)}",
                 f"d{_axes(self.dilation)}", "bias" if self.bias else "nobias", self.dtype, self.value_kind,
                 self.layout, f"seed={self.seed}"]
        if self.weight_seed is not None:
            parts.append(f"weight_seed={self.weight_seed}")
        if self.broken_rule:
            parts.append(f"breaks={self.broken_rule!r}")
        return " ".join(parts)

    # -- tensors ------------------------------------------------------------------------------
    def tensors(self) -> Tensors:
        """The problem's values: contiguous CPU tensors in their dtypes (the reference's input)."""
        generator = torch.Generator().manual_seed(self.seed)
        # pooled weights have a generator of their own: the same weight and bias whatever the input's seed
        weights = generator if self.weight_seed is None else torch.Generator().manual_seed(
            self.weight_seed ^ WEIGHT_SEED)
        if self.value_kind == "int":
            return self._integer_tensors(generator, weights)
        x = _random(self.input_shape, self.dtype, generator)
        w = _random(self._weight_value_shape(), self.weight_dtype or self.dtype, weights)
        b = _random(self.bias_shape or (self.out_channels,), self.bias_dtype or self.dtype,
                    weights) if self.bias else None
        if self.value_kind == "special" and self.weight_seed is None:
            x, w, b = _inject_non_finite((x, w, b), generator)
        elif self.value_kind == "special":  # each from its own generator: the pooled weight stays one value
            (x,), (w, b) = _inject_non_finite((x,), generator), _inject_non_finite((w, b), weights)
        return Tensors(x, w.expand(self.weight_shape).contiguous(), b)

    def materialize(self, device: str = "cpu", layout: str | None = None, values: Tensors | None = None) -> Tensors:
        """The tensors an implementation receives: the values of :meth:`tensors` (copies of ``values``,
        where they were already computed), on ``device``, in the problem's memory layout (or in
        ``layout``: the same values, other memory)."""
        x, w, b = (t if t is None else t.to(device, copy=values is not None) for t in values or self.tensors())
        return Tensors(*_lay_out(x, w, layout or self.layout), b)

    # -- what the gradient checks differentiate with ------------------------------------------
    def grad_output(self) -> torch.Tensor:
        """The output's gradient ``g``: values of the problem's kind from its own seed, contiguous on
        the CPU. Integers are thinned until every gradient's partial sums are exact; with the
        ``expanded_weight`` layout all samples (unbatched: all channels) get the same values, as when
        a loss broadcasts one gradient over the batch."""
        shape = self.geometry().output_shape
        generator = torch.Generator().manual_seed(self.seed ^ GRAD_OUTPUT_SEED)
        lead = (1,) + tuple(shape[1:]) if self.layout == "expanded_weight" else tuple(shape)
        if self.value_kind != "int":
            return _random(lead, self.dtype, generator).expand(shape).contiguous()
        g = _integers(lead, SMALL_INTEGER_RANGE.get(self.dtype, 8), self.dtype, generator).expand(shape).contiguous()
        limit = EXACT_INTEGER_LIMIT[self.dtype]
        tensors = self.tensors()
        while g.count_nonzero() and max(m.max().item() for m in gradients.magnitudes_first(
                tensors, self.kwargs(), g).values() if m.numel()) > limit:
            g = _thin(g[:1] if self.layout == "expanded_weight" else g, generator).expand(shape).contiguous()
        return g

    def materialize_grad_output(self, device: str = "cpu", layout: str | None = None) -> torch.Tensor:
        """``g`` as an implementation's backward receives it, in the problem's memory layout: channels
        last, a strided view, or stride 0 over its first dimension (the ``expanded_weight`` layout)."""
        g = self.grad_output().to(device)
        layout = layout or self.layout
        if layout == "channels_last" and g.dim() in (4, 5) and self.batched:
            return g.contiguous(memory_format={4: torch.channels_last, 5: torch.channels_last_3d}[g.dim()])
        if layout == "noncontig_input":
            return _strided_view(g)
        if layout == "expanded_weight" and g.dim():
            return g[:1].expand(g.shape)
        return g

    def probes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The directions double backward differentiates along: one like the input, one like the weight."""
        generator = torch.Generator().manual_seed(self.seed ^ PROBE_SEED)
        return _random(self.input_shape, self.dtype, generator), _random(self.weight_shape, self.dtype, generator)

    def _weight_value_shape(self) -> tuple[int, ...]:
        # An expanded weight repeats one input channel's taps over all input channels.
        if self.layout == "expanded_weight":
            return (1,) + tuple(self.weight_shape[1:])
        return tuple(self.weight_shape)

    def _integer_tensors(self, generator: torch.Generator, weights: torch.Generator) -> Tensors:
        """Small integers, thinned with zeros until every partial sum is exact in the output dtype (only the
        input is thinned: the weight may come from a pool)."""
        span = SMALL_INTEGER_RANGE.get(self.dtype, 8)
        x = _integers(self.input_shape, span, self.dtype, generator)
        # Nonzero taps: a zero tap would hide its input channel (a 1x1 kernel has one tap per channel).
        w = _integers(self._weight_value_shape(), span, self.dtype, weights, nonzero=True)
        w = w.expand(self.weight_shape).contiguous()
        b = _integers((self.out_channels,), span, self.dtype, weights) if self.bias else None
        limit = EXACT_INTEGER_LIMIT[self.dtype]
        while not self.integers_always_exact() and x.count_nonzero() and \
                magnitude(Tensors(x, w, b), self).max().item() > limit:
            x = _thin(x, generator)
        return Tensors(x, w, b)

    def integers_always_exact(self) -> bool:
        """Whether no partial sum of its small integers can pass the dtype's exact range: (largest term) *
        (terms per element) + (largest bias), each value's magnitude at most the span (|re| + |im| for complex
        values). Then (float32 and float64, but for the largest problems) no magnitudes need computing."""
        most = SMALL_INTEGER_RANGE.get(self.dtype, 8) * (2 if self.dtype.startswith("complex") else 1)
        return most * most * _most_terms(self) + most <= EXACT_INTEGER_LIMIT[self.dtype]


def magnitude(tensors: Tensors, problem: Problem) -> torch.Tensor:
    """``M = convT(|x|, |w|) + |b|`` in float64, the size of the terms summed into each element
    (for complex values ``|re| + |im|``, which bounds every real product a complex kernel forms)."""
    x, w, b = (None if t is None else _abs(t) for t in tensors)
    return plus_bias(reference_sum(x, w, problem.geometry()), b, problem.dims)


def sum_and_magnitude(tensors: Tensors, problem: Problem) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's sum of products before the bias, and :func:`magnitude`. For real values one
    scatter forms both, ``x*w`` and ``|x|*|w|`` side by side (this runs every example); a complex
    sum and its real magnitudes differ in type."""
    x, w, b = tensors
    if x.is_complex():
        return reference_sum(x, w, problem.geometry()), magnitude(tensors, problem)
    x64, w64 = oracles.widen(x), oracles.widen(w)
    both = reference_sum(torch.stack([x64, x64.abs()]), torch.stack([w64, w64.abs()]), problem.geometry())
    return both[0], plus_bias(both[1], None if b is None else _abs(b), problem.dims)


def term_count(tensors: Tensors, problem: Problem) -> torch.Tensor:
    """``K``: how many terms the definition sums into each element (+1 with a bias), float64. The
    count of ``(input index, tap)`` pairs is a product over axes (times ``Cin/groups``), so it is built
    from one short count per axis instead of a convolution of ones."""
    geometry = problem.geometry()
    K = torch.full((), float(geometry.in_channels_per_group), dtype=torch.float64)
    for axis in zip(geometry.input_size, geometry.kernel_size, geometry.stride, geometry.padding, geometry.dilation,
                    geometry.output_size):
        K = K.unsqueeze(-1) * _terms_on_axis(*axis)
    if tensors[2] is not None:  # the bias
        K = K + 1
    return K.expand(geometry.output_shape)


@functools.lru_cache(maxsize=4096)
def _terms_on_axis(L: int, k: int, s: int, p: int, d: int, length: int) -> torch.Tensor:
    """How many ``(input index, tap)`` pairs of one axis land on each of its output positions: pair
    ``(i, t)`` lands on ``i*s + t*d - p`` (counted with numpy, in microseconds; cached: shrinking and
    re-seeding meet the same axes again and again)."""
    landing = (np.arange(L)[:, None] * s + np.arange(k)[None, :] * d - p).reshape(-1)
    counts = np.bincount(landing[(landing >= 0) & (landing < length)], minlength=length)
    return torch.from_numpy(counts.astype(np.float64))


def _most_terms(problem: Problem) -> int:
    """An upper bound of the products summed into one output element: every tap of every input
    channel of the group."""
    return problem.weight_shape[0] // max(problem.groups, 1) * math.prod(problem.weight_shape[2:])


def _abs(t: torch.Tensor) -> torch.Tensor:
    return oracles.magnitude_of(oracles.widen(t))


RANDOM_CHUNK = 2**20  # a tensor larger than this is drawn in float32 chunks: no float64 copy at model sizes


def _random(shape: tuple[int, ...], dtype: str, generator: torch.Generator) -> torch.Tensor:
    if math.prod(shape) > RANDOM_CHUNK:
        return _random_in_chunks(shape, dtype, generator)
    values = torch.randn(shape, dtype=torch.float64, generator=generator)
    if dtype.startswith("complex"):
        values = torch.complex(values, torch.randn(shape, dtype=torch.float64, generator=generator))
    return values.to(spec.DTYPES[dtype])


def _random_in_chunks(shape: tuple[int, ...], dtype: str, generator: torch.Generator) -> torch.Tensor:
    """Normal values drawn in float32 (three times faster than float64: model-size tensors have millions)."""
    values = torch.empty(math.prod(shape), dtype=spec.DTYPES[dtype])
    for start in range(0, values.numel(), RANDOM_CHUNK):
        chunk = values[start:start + RANDOM_CHUNK]
        drawn = torch.randn(chunk.numel(), dtype=torch.float32, generator=generator)
        if dtype.startswith("complex"):
            drawn = torch.complex(drawn, torch.randn(chunk.numel(), dtype=torch.float32, generator=generator))
        chunk.copy_(drawn)
    return values.reshape(shape)


def _integers(shape: tuple[int, ...], span: int, dtype: str, generator: torch.Generator,
              nonzero: bool = False) -> torch.Tensor:
    complex_values = dtype.startswith("complex")
    # drawn straight in a real dtype: the same values and generator state as drawing int64 and converting
    values = torch.randint(-span, span + 1, shape, generator=generator,
                           dtype=torch.float64 if complex_values else spec.DTYPES[dtype])
    if nonzero:
        values = values.masked_fill_(values == 0, 1)
    if complex_values:
        imag = torch.randint(-span, span + 1, shape, generator=generator).to(torch.float64)
        values = torch.complex(values, imag).to(spec.DTYPES[dtype])
    return values


def _thin(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    keep = torch.rand(t.shape, generator=generator) < 0.5
    return torch.where(keep, t, torch.zeros((), dtype=t.dtype))


def _inject_non_finite(tensors: tuple, generator: torch.Generator) -> tuple:
    """Put one to three NaN/+Inf/-Inf values at random places of the input, weight or bias."""
    tensors = [None if t is None else t.clone() for t in tensors]
    count = int(torch.randint(1, 4, (), generator=generator))
    for _ in range(count):
        candidates = [i for i, t in enumerate(tensors) if t is not None and t.numel()]
        target = tensors[candidates[int(torch.randint(len(candidates), (), generator=generator))]]
        flat = target.view(-1)
        position = int(torch.randint(flat.numel(), (), generator=generator))
        flat[position] = (math.nan, math.inf, -math.inf)[int(torch.randint(3, (), generator=generator))]
    return tuple(tensors)


def _lay_out(x: torch.Tensor, w: torch.Tensor, layout: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Same values, other memory: channels_last, strided views, or an expanded (stride-0) weight."""
    if layout == "channels_last":
        fmt = {4: torch.channels_last, 5: torch.channels_last_3d}
        x = x.to(memory_format=fmt[x.dim()]) if x.dim() in fmt and x.dim() == w.dim() else x
        w = w.to(memory_format=fmt[w.dim()]) if w.dim() in fmt else w
    elif layout == "noncontig_input":
        x = _strided_view(x)
    elif layout == "noncontig_weight":
        w = w.transpose(0, 1).contiguous().transpose(0, 1) if w.dim() >= 2 else w
    elif layout == "expanded_weight":
        w = w[:1].expand(w.shape)
    return x, w


def _strided_view(t: torch.Tensor) -> torch.Tensor:
    """A view of ``t``'s values that skips every other element of a wider buffer (non-contiguous)."""
    if t.dim() == 0:
        return t
    wide = torch.empty(t.shape[:-1] + (2 * t.shape[-1],), dtype=t.dtype, device=t.device)
    view = wide[..., ::2]
    view.copy_(t)
    return view


def _axes(values: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in values)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
