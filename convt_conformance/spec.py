"""What a transposed convolution *is*: the one place that defines the contract.

The contract is PyTorch's ``torch.nn.functional.conv_transpose{1,2,3}d(input, weight, bias, stride,
padding, output_padding, groups, dilation)``:

* input ``(N, Cin, *L)`` or unbatched ``(Cin, *L)``; weight ``(Cin, Cout/groups, *k)``; bias ``(Cout,)``.
* per axis, input element ``i`` times kernel tap ``t`` lands at output position
  ``i*stride - padding + t*dilation`` (the *scatter view*); every such product within a group is
  summed, plus the bias.
* output length per axis ``(L-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1``.

Everything else in the project (implementations, strategies, oracles, explanations) takes shapes,
validity and the index map from here.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

IntOrTuple = int | Sequence[int]

# The dtype names the project knows, mapped to torch dtypes.
DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "complex128": torch.complex128,
    "complex64": torch.complex64,
}
ALL_DTYPES = tuple(DTYPES)


class InvalidProblem(ValueError):
    """A parameter set outside the valid domain of the contract (one line names the culprit)."""


@dataclass(frozen=True)
class Geometry:
    """A validated problem's shape facts, every per-axis value as a tuple of length ``dims``."""

    dims: int
    batched: bool
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    input_size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]

    @functools.cached_property
    def output_size(self) -> tuple[int, ...]:
        return output_size(self.input_size, self.kernel_size, self.stride, self.padding,
                           self.output_padding, self.dilation)

    @property
    def output_shape(self) -> tuple[int, ...]:
        lead = (self.batch, self.out_channels) if self.batched else (self.out_channels,)
        return lead + self.output_size

    @property
    def in_channels_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_channels_per_group(self) -> int:
        return self.out_channels // self.groups

    def full_size(self) -> tuple[int, ...]:
        """Length per axis of an uncropped scatter buffer that holds every landing position and
        every output position (the output window is ``[padding, padding + output_length)``)."""
        return tuple((L - 1) * s + d * (k - 1) + 1 + op for L, k, s, d, op in zip(
            self.input_size, self.kernel_size, self.stride, self.dilation, self.output_padding))


def output_length(L: int, k: int, stride: int, padding: int, output_padding: int, dilation: int) -> int:
    """Output length of one axis: ``(L-1)*s - 2*p + d*(k-1) + op + 1``."""
    return (L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1


def output_size(input_size: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int],
                padding: Sequence[int], output_padding: Sequence[int],
                dilation: Sequence[int]) -> tuple[int, ...]:
    return tuple(output_length(*axis) for axis in zip(
        input_size, kernel_size, stride, padding, output_padding, dilation))


def landing_position(i: int, t: int, stride: int, padding: int, dilation: int) -> int:
    """The index map of the scatter view: where input index ``i`` times tap ``t`` lands."""
    return i * stride - padding + t * dilation


def contributing_pairs(o: int, L: int, k: int, stride: int, padding: int,
                       dilation: int) -> list[tuple[int, int]]:
    """All ``(input index, tap)`` pairs of one axis that land on output position ``o``."""
    pairs = []
    for t in range(k):
        offset = o + padding - t * dilation
        if offset % stride == 0 and 0 <= offset // stride < L:
            pairs.append((offset // stride, t))
    return pairs


def as_tuple(value: IntOrTuple, dims: int, name: str) -> tuple[int, ...]:
    """Expand an int (or, as PyTorch does, a one-element sequence) to ``dims`` copies, or check a
    per-axis sequence has ``dims`` ints."""
    if isinstance(value, bool):
        raise InvalidProblem(f"{name} must be an int or a tuple of {dims} ints, got {value!r}")
    if isinstance(value, int):
        return (value,) * dims
    values = tuple(value)
    if len(values) == 1:
        values = values * dims
    if len(values) != dims or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise InvalidProblem(f"{name} must be an int or a tuple of {dims} ints, got {value!r}")
    return values


def per_axis(value: IntOrTuple, dims: int) -> tuple[int, ...]:
    """Expand an int or a one-element sequence to ``dims`` values, leaving anything else as given
    (no validation: adapters that pass a framework its own domain use this)."""
    if isinstance(value, int):
        return (value,) * dims
    values = tuple(value)
    return values * dims if len(values) == 1 else values


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The type partial sums are kept in: half types accumulate in float32 (as cuDNN and oneDNN do)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def check_arguments(input_shape: Sequence[int], weight_shape: Sequence[int],
                    bias_shape: Sequence[int] | None, stride: IntOrTuple = 1, padding: IntOrTuple = 0,
                    output_padding: IntOrTuple = 0, groups: int = 1, dilation: IntOrTuple = 1,
                    dtypes: Sequence[torch.dtype] = ()) -> Geometry:
    """Validate a parameter set exactly as PyTorch's contract does; return its :class:`Geometry`.

    Raises :class:`InvalidProblem` with one line that names the offending argument.
    """
    if len(weight_shape) not in (3, 4, 5):
        raise InvalidProblem(f"weight must have 3, 4 or 5 dimensions (Cin, Cout/groups, *kernel), "
                             f"got shape {tuple(weight_shape)}")
    dims = len(weight_shape) - 2
    if len(input_shape) not in (dims + 1, dims + 2):
        raise InvalidProblem(f"input of a {dims}d transposed convolution must have {dims + 1} "
                             f"(unbatched) or {dims + 2} dimensions, got shape {tuple(input_shape)}")
    if len(set(dtypes)) > 1:
        raise InvalidProblem(f"input, weight and bias must share one dtype, got {sorted(map(str, set(dtypes)))}")
    batched = len(input_shape) == dims + 2
    batch = input_shape[0] if batched else 1
    in_channels, *input_size = input_shape[1:] if batched else input_shape
    stride_t = as_tuple(stride, dims, "stride")
    padding_t = as_tuple(padding, dims, "padding")
    output_padding_t = as_tuple(output_padding, dims, "output_padding")
    dilation_t = as_tuple(dilation, dims, "dilation")
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise InvalidProblem(f"groups must be an int, got {groups!r}")
    _check_geometry_values(stride_t, padding_t, output_padding_t, dilation_t, groups)
    w_in, w_out_per_group, *kernel_size = weight_shape
    if w_in < 1 or w_out_per_group < 1 or min(kernel_size) < 1:
        raise InvalidProblem(f"weight must be non-empty, got shape {tuple(weight_shape)}")
    if w_in % groups:
        raise InvalidProblem(f"groups={groups} must divide the weight's input channels {w_in}")
    if in_channels != w_in:
        raise InvalidProblem(f"input has {in_channels} channels but weight.shape[0] is {w_in}")
    if min(input_size) < 1:
        raise InvalidProblem(f"input spatial sizes must be at least 1, got {tuple(input_size)}")
    out_channels = w_out_per_group * groups
    if bias_shape is not None and tuple(bias_shape) != (out_channels,):
        raise InvalidProblem(f"bias must have shape ({out_channels},), got {tuple(bias_shape)}")
    geometry = Geometry(dims, batched, batch, in_channels, out_channels, groups, tuple(input_size),
                        tuple(kernel_size), stride_t, padding_t, output_padding_t, dilation_t)
    if min(geometry.output_size) < 1:
        raise InvalidProblem(f"output size {geometry.output_size} is not positive "
                             f"(input {tuple(input_size)}, kernel {tuple(kernel_size)})")
    return geometry


def _check_geometry_values(stride: tuple[int, ...], padding: tuple[int, ...],
                           output_padding: tuple[int, ...], dilation: tuple[int, ...],
                           groups: int) -> None:
    for name, values, least in (("stride", stride, 1), ("dilation", dilation, 1),
                                ("padding", padding, 0), ("output_padding", output_padding, 0)):
        if min(values) < least:
            raise InvalidProblem(f"{name} must be at least {least} on every axis, got {values}")
    if groups < 1:
        raise InvalidProblem(f"groups must be at least 1, got {groups}")
    for axis, (op, s, d) in enumerate(zip(output_padding, stride, dilation)):
        if op >= max(s, d):
            raise InvalidProblem(f"output_padding {op} on axis {axis} must be smaller than "
                                 f"max(stride={s}, dilation={d})")


def validate(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
             stride: IntOrTuple = 1, padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
             groups: int = 1, dilation: IntOrTuple = 1) -> Geometry:
    """:func:`check_arguments` on tensors (shapes, dtypes and devices)."""
    tensors = [t for t in (input, weight, bias) if t is not None]
    if len({t.device for t in tensors}) > 1:
        raise InvalidProblem(f"input, weight and bias must be on one device, got "
                             f"{sorted({str(t.device) for t in tensors})}")
    return check_arguments(input.shape, weight.shape, None if bias is None else bias.shape, stride,
                           padding, output_padding, groups, dilation, [t.dtype for t in tensors])


@dataclass(frozen=True)
class Term:
    """One product that sums into an output element: ``input[input_index] * weight[weight_index]``."""

    input_index: tuple[int, ...]
    weight_index: tuple[int, ...]


def terms_of(geometry: Geometry, output_index: Sequence[int]) -> Iterator[Term]:
    """Every (input element, kernel tap) product that the definition sums into one output element.

    ``output_index`` is ``(n, co, *o)`` (or ``(co, *o)`` unbatched); the yielded indexes have the
    same batched/unbatched form as the input. The bias (if any) adds on top.
    """
    lead = tuple(output_index[:-geometry.dims])
    n, co = lead if geometry.batched else (None, lead[0])
    o = output_index[-geometry.dims:]
    group, co_in_group = divmod(co, geometry.out_channels_per_group)
    per_axis = [contributing_pairs(o[a], geometry.input_size[a], geometry.kernel_size[a],
                                   geometry.stride[a], geometry.padding[a], geometry.dilation[a])
                for a in range(geometry.dims)]
    cin_g = geometry.in_channels_per_group
    for ci in range(group * cin_g, (group + 1) * cin_g):
        for combo in itertools.product(*per_axis):
            spatial_in = tuple(i for i, _ in combo)
            taps = tuple(t for _, t in combo)
            in_lead = (n, ci) if geometry.batched else (ci,)
            yield Term(in_lead + spatial_in, (ci, co_in_group) + taps)
