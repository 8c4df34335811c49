"""The float64 definition at sampled positions, and bounds from norms: what checks a model-size problem
without computing its whole reference.

A value at one output position costs ``Cin/groups x taps`` products (the terms the definition sums
there), so a few hundred positions cost far less than the kernel's own call. The positions are the ones
kernels get wrong: plane corners, the first and last position of every stride phase, channel-block edges
and group boundaries, the first and last sample, and random ones. Gradients are sampled the same way:
``grad_input`` at input positions, ``grad_weight`` at weight positions. The adjoint identity is checked
on the whole tensors through norms (:func:`operator_norm_bound`), which cost a pass over the weight.
Everything here is plain torch on batched CPU tensors; nothing knows about Hypothesis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from convt_conformance import spec

from . import oracles

# Channel counts where blocked kernels change blocks (their tails sit one below and one above).
BLOCK_EDGES = (7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 511, 512, 1023, 1024)
RANDOM_POSITIONS = 96
MOST_POSITIONS = 320


class Sampled(NamedTuple):
    """The definition at ``positions`` (rows of indices): value, magnitude ``M`` and term count ``K``."""

    positions: torch.Tensor  # (S, rank) long
    value: torch.Tensor  # (S,) float64 (complex128 for complex values)
    M: torch.Tensor  # (S,) float64
    K: torch.Tensor  # (S,) float64


def _ends(size: int) -> list[int]:
    return sorted({0, min(1, size - 1), max(size - 2, 0), size - 1})


def _channel_edges(channels: int, per_group: int) -> list[int]:
    """First and last channel of the first, second and last group, and the block edges inside them."""
    groups = channels // per_group
    edges = set()
    for group in sorted({0, min(1, groups - 1), groups - 1}):
        start = group * per_group
        edges |= {start, start + per_group - 1} | {start + e for e in BLOCK_EDGES if e < per_group}
    return sorted(edges)


def _phase_ends(size: int, stride: int, padding: int) -> list[int]:
    """The first and last output position of every stride phase (``(o + padding) mod stride``): the
    positions a kernel that splits the output by phase handles first and last."""
    ends = set(_ends(size))
    for phase in range(stride):
        first = (phase - padding) % stride
        if first < size:
            ends |= {first, first + (size - 1 - first) // stride * stride}
    return sorted(ends)


def positions(specials: Sequence[Sequence[int]], sizes: Sequence[int], generator: torch.Generator,
              random_count: int = RANDOM_POSITIONS, most: int = MOST_POSITIONS) -> torch.Tensor:
    """Rows of indices into a tensor of ``sizes``: every corner (first/last along each axis), each axis's
    ``specials`` with the other axes at random special values, ``random_count`` uniform ones, and either side of
    where a 32-bit index wraps; at most ``most``, in that order but the wrap kept."""
    if any(size == 0 for size in sizes):
        return torch.zeros((0, len(sizes)), dtype=torch.long)
    choice = lambda options: options[int(torch.randint(len(options), (), generator=generator))]  # noqa: E731
    rows = [tuple(corner) for corner in _corners(sizes)]
    for axis, values in enumerate(specials):
        for value in values:
            rows.append(tuple(value if a == axis else choice(list(specials[a])) for a in range(len(sizes))))
    uniform = torch.stack([torch.randint(size, (random_count,), generator=generator) for size in sizes], dim=1)
    rows += [tuple(row) for row in uniform.tolist()]
    boundaries = _index_boundaries(sizes)
    unique = list(dict.fromkeys(rows))[:most - len(boundaries)] + boundaries
    return torch.tensor(list(dict.fromkeys(unique)), dtype=torch.long)


INDEX_BOUNDARIES = (2**31 - 1, 2**31, 2**32 - 1, 2**32)  # where 32-bit signed and unsigned indices wrap


def _index_boundaries(sizes: Sequence[int]) -> list[tuple[int, ...]]:
    """The elements either side of where a 32-bit index wraps, in a tensor of ``sizes`` large enough."""
    total = math.prod(sizes)
    flat = [i for i in INDEX_BOUNDARIES if i < total]
    if not flat:
        return []
    return [tuple(int(v) for v in row) for row in zip(*torch.unravel_index(torch.tensor(flat), tuple(sizes)))]


def _corners(sizes: Sequence[int]) -> list[tuple[int, ...]]:
    corners = [()]
    for size in sizes:
        corners = [c + (v,) for c in corners for v in sorted({0, size - 1})]
    return corners[:64]


def output_positions(geometry: spec.Geometry, generator: torch.Generator) -> torch.Tensor:
    """Positions of the batched output ``(N, Cout, *out)``."""
    sizes = (max(geometry.batch, 1) if geometry.batched else 1, geometry.out_channels) + geometry.output_size
    specials = [_ends(sizes[0]), _channel_edges(geometry.out_channels, geometry.out_channels_per_group)]
    specials += [_phase_ends(*axis) for axis in zip(geometry.output_size, geometry.stride, geometry.padding)]
    return positions(specials, sizes, generator)


def input_positions(geometry: spec.Geometry, generator: torch.Generator) -> torch.Tensor:
    """Positions of the batched input ``(N, Cin, *L)`` (where ``grad_input`` is sampled)."""
    sizes = (max(geometry.batch, 1) if geometry.batched else 1, geometry.in_channels) + geometry.input_size
    specials = [_ends(sizes[0]), _channel_edges(geometry.in_channels, geometry.in_channels_per_group)]
    specials += [_ends(L) for L in geometry.input_size]
    return positions(specials, sizes, generator)


def weight_positions(geometry: spec.Geometry, generator: torch.Generator) -> torch.Tensor:
    """Positions of the weight ``(Cin, Cout/groups, *kernel)`` (where ``grad_weight`` is sampled)."""
    sizes = (geometry.in_channels, geometry.out_channels_per_group) + geometry.kernel_size
    specials = [_channel_edges(geometry.in_channels, geometry.in_channels_per_group),
                _channel_edges(geometry.out_channels_per_group, geometry.out_channels_per_group)]
    specials += [_ends(k) for k in geometry.kernel_size]
    return positions(specials, sizes, generator)


# -- the definition at one position ------------------------------------------------------------------
def _terms(a: torch.Tensor, b: torch.Tensor) -> tuple[complex | float, float, int]:
    """Sum, sum of magnitudes and count of the products ``a * b``, in float64."""
    a64, b64 = oracles.widen(a), oracles.widen(b)
    products = a64 * b64
    magnitude = (oracles.magnitude_of(a64) * oracles.magnitude_of(b64)).sum()
    return products.sum().item(), magnitude.item(), products.numel()


def _sampled(rows: torch.Tensor, term_sets, bias: torch.Tensor | None, bias_channel: int = 1) -> Sampled:
    """Assemble per-position terms (each ``(sum, magnitude, count)``), the bias added where given."""
    values, M, K = [], [], []
    for row, (value, magnitude, count) in zip(rows.tolist(), term_sets):
        if bias is not None:
            b = oracles.widen(bias[row[bias_channel]])
            value, magnitude, count = value + b.item(), magnitude + oracles.magnitude_of(b).item(), count + 1
        values.append(value)
        M.append(magnitude)
        K.append(count)
    complex_values = any(isinstance(v, complex) for v in values)
    return Sampled(rows, torch.tensor(values, dtype=torch.complex128 if complex_values else torch.float64),
                   torch.tensor(M, dtype=torch.float64), torch.tensor(K, dtype=torch.float64))


GATHER_ELEMENTS = 2**22  # terms gathered at once (positions x channels x taps): a few tens of MB in float64


def _gathered(rows: torch.Tensor, channels: int, taps: tuple[int, ...], gather) -> Sampled:
    """The terms at each position, gathered for a chunk of positions at once: ``gather(chunk)`` gives the two
    factors ``(S, channels, *taps)`` and the mask of the taps that land ``(S, 1, *taps)``."""
    values, M, K = [], [], []
    per_position = max(channels * math.prod(taps), 1)
    step = max(GATHER_ELEMENTS // per_position, 1)
    for start in range(0, len(rows), step):
        a, b, mask = gather(rows[start:start + step])
        a64, b64 = oracles.widen(a), oracles.widen(b)
        keep = mask.to(torch.float64)
        flat = lambda t: t.flatten(1)  # noqa: E731
        values.append(flat(a64 * b64 * keep).sum(1))
        M.append(flat(oracles.magnitude_of(a64) * oracles.magnitude_of(b64) * keep).sum(1))
        K.append(flat(mask).sum(1).to(torch.float64) * channels)
    if not values:
        empty = torch.zeros(0, dtype=torch.float64)
        return Sampled(rows, empty, empty, empty)
    return Sampled(rows, torch.cat(values), torch.cat(M), torch.cat(K))


Reach = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


def _taps_of(chunk: torch.Tensor, geometry: spec.Geometry, reach: Reach) -> tuple[list, list, torch.Tensor]:
    """For a chunk of positions, per axis: every tap's index into the other tensor and the tap itself, shaped
    ``(S, 1, ..k.., 1)`` for the gathers, and the mask of the taps in range on every axis. ``reach(positions
    (S, 1), taps (1, k), axis)`` gives one axis's indices and whether each is in range."""
    dims = geometry.dims
    indices, taps, valid = [], [], torch.ones((len(chunk), 1) + (1,) * dims, dtype=torch.bool)
    for axis, k in enumerate(geometry.kernel_size):
        index, ok = reach(chunk[:, 2 + axis].unsqueeze(1), torch.arange(k).unsqueeze(0), axis)
        shape = [len(chunk), 1] + [1] * dims
        shape[2 + axis] = k
        indices.append(torch.where(ok, index, 0).reshape(shape))
        taps.append(torch.arange(k).expand(len(chunk), k).reshape(shape))
        valid = valid & ok.reshape(shape)
    return indices, taps, valid


def _with_bias(sampled_: Sampled, bias: torch.Tensor | None, channel: torch.Tensor) -> Sampled:
    if bias is None or not len(channel):
        return sampled_
    b = oracles.widen(bias)[channel]
    return Sampled(sampled_.positions, sampled_.value + b, sampled_.M + oracles.magnitude_of(b), sampled_.K + 1)


def _group_channels(channel: torch.Tensor, per_group: int, other_per_group: int, dims: int) -> torch.Tensor:
    """Every channel of the other side in ``channel``'s group, shaped ``(S, other_per_group, 1...)``."""
    return channel // per_group * other_per_group + torch.arange(other_per_group).reshape(
        (1, other_per_group) + (1,) * dims)


def forward_at(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, geometry: spec.Geometry,
               rows: torch.Tensor) -> Sampled:
    """``convT(x, w) + bias`` at output positions ``(n, c_out, *o)`` of the batched input ``x``: input ``i`` and
    tap ``t`` land on ``o`` where ``o + p - t*d = i*s``."""
    cin_g, cout_g, dims = geometry.in_channels_per_group, geometry.out_channels_per_group, geometry.dims

    def reach(o: torch.Tensor, t: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
        L, s, p, d = (geometry.input_size[axis], geometry.stride[axis], geometry.padding[axis],
                      geometry.dilation[axis])
        q = o + p - t * d
        return q // s, (q % s == 0) & (q >= 0) & (q < L * s)

    def gather(chunk: torch.Tensor):
        inputs, taps, valid = _taps_of(chunk, geometry, reach)
        shape = (len(chunk), 1) + (1,) * dims
        n, co = chunk[:, 0].reshape(shape), chunk[:, 1].reshape(shape)
        channel = _group_channels(co, cout_g, cin_g, dims)
        return x[(n, channel, *inputs)], w[(channel, co % cout_g, *taps)], valid

    return _with_bias(_gathered(rows, cin_g, geometry.kernel_size, gather), bias, rows[:, 1])


def grad_input_at(g: torch.Tensor, w: torch.Tensor, geometry: spec.Geometry, rows: torch.Tensor) -> Sampled:
    """``grad_input`` (the convolution of ``g`` with ``w``; with ``conj(w)`` for complex values, as autograd
    gives the conjugate transpose) at input positions ``(n, c_in, *i)``: tap ``t`` reads ``g`` at
    ``i*s - p + t*d``."""
    cin_g, cout_g, dims = geometry.in_channels_per_group, geometry.out_channels_per_group, geometry.dims

    def reach(i: torch.Tensor, t: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
        o = i * geometry.stride[axis] - geometry.padding[axis] + t * geometry.dilation[axis]
        return o, (o >= 0) & (o < geometry.output_size[axis])

    def gather(chunk: torch.Tensor):
        outputs, taps, valid = _taps_of(chunk, geometry, reach)
        shape = (len(chunk), 1) + (1,) * dims
        n, ci = chunk[:, 0].reshape(shape), chunk[:, 1].reshape(shape)
        channel = _group_channels(ci, cin_g, cout_g, dims)
        return g[(n, channel, *outputs)], w[(ci, channel % cout_g, *taps)].conj(), valid

    return _gathered(rows, cout_g, geometry.kernel_size, gather)


def grad_weight_at(x: torch.Tensor, g: torch.Tensor, geometry: spec.Geometry, rows: torch.Tensor) -> Sampled:
    """``grad_weight`` at weight positions ``(c_in, c_out within the group, *tap)``: every sample's input
    (conjugated, for complex values) times the output gradient where that tap lands it."""
    cin_g, cout_g = geometry.in_channels_per_group, geometry.out_channels_per_group

    def terms(row: list[int]):
        ci, column, *tap = row
        co = ci // cin_g * cout_g + column
        inputs, outputs = [], []
        for t, L, s, p, d, length in zip(tap, geometry.input_size, geometry.stride, geometry.padding,
                                         geometry.dilation, geometry.output_size):
            shift = t * d - p  # input i lands at i*s + shift
            lo, hi = max(0, -(shift // s)), min(L - 1, (length - 1 - shift) // s)
            if lo > hi:
                return 0.0, 0.0, 0
            inputs.append(slice(lo, hi + 1))
            outputs.append(slice(lo * s + shift, hi * s + shift + 1, s))
        return _terms(x[(slice(None), ci) + tuple(inputs)].conj(), g[(slice(None), co) + tuple(outputs)])

    return _sampled(rows, (terms(row) for row in rows.tolist()), None)


def at(t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``t``'s elements at ``rows``, float64 (complex128) on the CPU."""
    return oracles.widen(t.detach()[tuple(rows.to(t.device).T)].cpu())


# -- norms: bounds on whole tensors from a pass over each ---------------------------------------------------
def operator_norm_bound(w: torch.Tensor, geometry: spec.Geometry) -> float:
    """An upper bound of the 2-norm of the linear map ``x -> convT(|x|, |w|)`` (the same for its adjoint):
    Schur's test, ``sqrt(max column sum * max row sum)``. A column (one input element) meets each of its
    output channels' taps once; a row (one output element) meets, per axis, only the taps of one stride
    phase (``t*d mod s``), so its sum is the largest over phase classes."""
    # |w| is exact in the weight's own type (|re| + |im| only in float64); the sums accumulate in float64
    size = oracles.magnitude_of(oracles.widen(w) if w.is_complex() else w.detach().cpu())
    cin_g, cout_g = geometry.in_channels_per_group, geometry.out_channels_per_group
    column = float(size.flatten(1).sum(1, dtype=torch.float64).max()) if size.numel() else 0.0
    per_group = size.reshape(geometry.groups, cin_g, cout_g, *geometry.kernel_size).sum(1, dtype=torch.float64)
    for axis, (k, s, d) in enumerate(zip(geometry.kernel_size, geometry.stride, geometry.dilation)):
        classes = torch.tensor([t * d % s for t in range(k)])
        dim = 2 + axis
        shape = list(per_group.shape)
        shape[dim] = s
        per_group = torch.zeros(shape, dtype=per_group.dtype).index_add_(dim, classes, per_group)
    row = float(per_group.max()) if per_group.numel() else 0.0
    return math.sqrt(column * row)


def most_terms(geometry: spec.Geometry) -> tuple[int, int, int]:
    """The most terms one element sums: of the output, of ``grad_input``, of ``grad_weight`` (bias excluded)."""
    phase_taps = math.prod(-(-k // (s // math.gcd(s, d))) for k, s, d in zip(geometry.kernel_size, geometry.stride,
                                                                             geometry.dilation))
    return (geometry.in_channels_per_group * min(phase_taps, math.prod(geometry.kernel_size)),
            geometry.out_channels_per_group * math.prod(geometry.kernel_size),
            max(geometry.batch, 1) * math.prod(geometry.input_size))


def grad_weight_magnitude_bound(x: torch.Tensor, g: torch.Tensor, geometry: spec.Geometry) -> float:
    """An upper bound of ``||M||_F`` for ``grad_weight``: each element's magnitude is at most
    ``||x_ci||_2 ||g_co||_2`` (Cauchy-Schwarz), for every tap."""
    groups = geometry.groups
    x2 = oracles.magnitude_of(oracles.widen(x)).transpose(0, 1).flatten(1).norm(dim=1) ** 2  # per input channel
    g2 = oracles.magnitude_of(oracles.widen(g)).transpose(0, 1).flatten(1).norm(dim=1) ** 2
    per_group = x2.reshape(groups, -1).sum(1) * g2.reshape(groups, -1).sum(1)
    return math.sqrt(float(per_group.sum()) * math.prod(geometry.kernel_size))
