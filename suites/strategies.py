"""Hypothesis strategies: valid problems over the whole parameter space, and invalid ones.

Historical transposed-convolution bugs cluster in known regions (stride with dilation, output_padding,
groups, k=1 with stride, kernels larger than the input, channels_last with size-1 channels, ...). Each
draw first picks a *focus*; a focus forces its region on the first spatial axis, so every region is
reached often by construction, not by luck. Unfocused draws cover the rest of the space.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence

from hypothesis import assume
from hypothesis import strategies as st

from convt_conformance import spec

from .problem import LAYOUTS, Problem

MAX_OUTPUT_ELEMENTS = 50_000  # keeps one example to milliseconds on a laptop core
MAX_LENGTH = {1: 12, 2: 7, 3: 4}  # input length per axis, by dims
LARGE_LENGTH = {1: 64, 2: 24, 3: 12}  # the "large-spatial" focus: one axis up to this long
# Real CPU/GPU kernels block channels by 8, 16 or 32: these sizes hit whole blocks and their tails.
CHANNEL_BLOCK_SIZES = (7, 8, 9, 15, 16, 17, 31, 32, 33)
AXIS_FOCI = ("stride-dilation", "output-padding", "op-ge-stride", "op-gt-padding", "padding-crop",
             "k1-stride", "kernel-eq-stride", "kernel-gt-input", "tiny-spatial", "large-spatial")
CHANNEL_FOCI = ("groups", "depthwise", "cin-ne-cout", "channel-blocks")
OTHER_FOCI = ("batch0", "unbatched", "channels-last-size1", "odd-layout", "3d", "per-axis-differ")
# Each draw picks one focus of each family, independently, so that even a short run of one test (the
# ci profile's 30 examples) meets every axis focus with high probability. "free" leads each family so
# that shrinking moves towards an unconstrained draw. A 1x1 fast path and the tail of a channel block
# need every axis, or both channel counts, just so: their foci count twice.
AXIS_FAMILY = ("free",) * 2 + AXIS_FOCI + ("k1-stride",)
CHANNEL_FAMILY = ("free",) * 2 + CHANNEL_FOCI + ("channel-blocks",)
OTHER_FAMILY = ("free",) * 2 + OTHER_FOCI
# What a focus asks of the axes after the first (the first gets the axis focus itself).
OTHER_AXES = {"channel-blocks": "channel-blocks", "k1-stride": "k1"}


def _any_axis(p: Problem, test: Callable[..., bool]) -> bool:
    L = p.input_shape[-p.dims:]
    k = p.weight_shape[2:]
    return any(test(*axis) for axis in zip(L, k, p.stride, p.padding, p.output_padding, p.dilation))


def _in_channels(p: Problem) -> int:
    return p.input_shape[1 if p.batched else 0]


# Bug-prone regions (research notes, section C), as predicates over a valid problem.
REGIONS: dict[str, Callable[[Problem], bool]] = {
    "stride>1 with dilation>1": lambda p: _any_axis(p, lambda L, k, s, pad, op, d: s > 1 and d > 1),
    "stride>1, dilation>1, k>=3": lambda p: _any_axis(p, lambda L, k, s, pad, op, d: s > 1 < d and k >= 3),
    "output_padding>0": lambda p: any(op > 0 for op in p.output_padding),
    "output_padding>=stride": lambda p: any(op >= s for op, s in zip(p.output_padding, p.stride)),
    "output_padding>padding": lambda p: any(op > pad for op, pad in zip(p.output_padding, p.padding)),
    "dilation>stride (output_padding may reach past the stride)": lambda p: any(
        d > s for s, d in zip(p.stride, p.dilation)),
    "padding crops taps (p>d*(k-1))": lambda p: _any_axis(p, lambda L, k, s, pad, op, d: pad > d * (k - 1)),
    "groups>1": lambda p: p.groups > 1,
    "groups>=3": lambda p: p.groups >= 3,
    "depthwise (groups=Cin>1)": lambda p: p.groups > 1 and p.groups == _in_channels(p),
    "Cout/groups>1 with groups>1": lambda p: p.groups > 1 and p.weight_shape[1] > 1,
    "Cin!=Cout": lambda p: _in_channels(p) != p.out_channels,
    "k=1 with stride>1": lambda p: _any_axis(p, lambda L, k, s, pad, op, d: k == 1 and s > 1),
    "kernel==stride>1": lambda p: _any_axis(p, lambda L, k, s, pad, op, d: k == s > 1),
    "kernel>input": lambda p: _any_axis(p, lambda L, k, s, pad, op, d: k > L),
    "spatial size 1-2": lambda p: _any_axis(p, lambda L, k, s, pad, op, d: L <= 2),
    "batch 0": lambda p: p.batched and p.input_shape[0] == 0,
    "unbatched": lambda p: not p.batched,
    "channels_last with a size-1 channel dim": lambda p: p.layout == "channels_last" and (
        _in_channels(p) == 1 or p.out_channels == 1),
    "non-contiguous/expanded weight": lambda p: p.layout in ("noncontig_weight", "expanded_weight"),
    "non-contiguous input": lambda p: p.layout == "noncontig_input",
    "3d": lambda p: p.dims == 3,
    "per-axis values differ": lambda p: p.dims > 1 and any(
        len(set(v)) > 1 for v in (p.stride, p.padding, p.output_padding, p.dilation, p.weight_shape[2:])),
    "fp16/bf16": lambda p: p.dtype in ("float16", "bfloat16"),
    "7+ channels per group (blocked kernels)": lambda p: max(p.weight_shape[0] // p.groups, p.weight_shape[1]) >= 7,
    "long spatial axis": lambda p: any(L > MAX_LENGTH[p.dims] for L in p.input_shape[-p.dims:]),
    "bias": lambda p: p.bias,
}


# Strategies are built once per distinct argument and reused: Hypothesis validates every new strategy object
# on its first draw, which cost as much as the draw itself when each example built ~25 of them.
@functools.cache
def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


@functools.cache
def _choice(options: tuple) -> st.SearchStrategy:
    return st.sampled_from(options)


SEEDS = st.integers(0, 2**31 - 1)
BLOCK_OR_ANY = st.one_of(st.sampled_from(CHANNEL_BLOCK_SIZES), st.integers(7, 33))


def regions_of(problem: Problem) -> list[str]:
    """The bug-prone regions a valid problem lies in."""
    return [name for name, inside in REGIONS.items() if inside(problem)]


def _axis(draw: st.DrawFn, dims: int, focus: str) -> tuple[int, int, int, int, int, int]:
    """One spatial axis ``(L, k, s, p, op, d)``; the focus constrains it when it is an axis focus."""
    ints = lambda lo, hi: draw(_integers(lo, hi))  # noqa: E731
    lmax = MAX_LENGTH[dims]
    L, k, s, d = None, None, None, None
    if focus == "stride-dilation":
        s, d, k = ints(2, 4), ints(2, 4), ints(3, 5)
    elif focus in ("output-padding", "op-gt-padding"):
        s = ints(2, 4)
    elif focus == "op-ge-stride":
        s = ints(1, 3)
        d = ints(s + 1, 4)
    elif focus == "padding-crop":
        k, d = ints(1, 3), ints(1, 2)
    elif focus == "k1-stride":
        k, s = 1, ints(2, 4)
    elif focus == "k1":  # the other axes of a k1-stride draw: 1x1 fast paths need k=1 on every axis
        k = 1
    elif focus == "kernel-eq-stride":
        s = ints(2, 4)
        k = s
    elif focus == "channel-blocks":  # small on every axis, so that many channels fit the work cap
        L, k, s, d = ints(1, 4), ints(1, 3), ints(1, 2), ints(1, 2)
    elif focus == "large-spatial":
        L = ints(lmax + 1, LARGE_LENGTH[dims])
    elif focus in ("kernel-gt-input", "tiny-spatial"):
        L = ints(1, 2)
        if focus == "kernel-gt-input":
            k = ints(L + 1, 5)
    L = ints(1, lmax) if L is None else L
    k = ints(1, 5) if k is None else k
    s = ints(1, 4) if s is None else s
    d = ints(1, 4) if d is None else d
    op_hi = max(s, d) - 1
    op_lo = {"output-padding": 1, "op-gt-padding": 1, "op-ge-stride": s}.get(focus, 0)
    op = ints(min(op_lo, op_hi), op_hi)
    if focus == "padding-crop":
        crop = d * (k - 1) + 1  # the smallest padding that crops whole taps away
        L = max(L, -(-(2 * crop - d * (k - 1) - op) // s) + 1)
    p_hi = ((L - 1) * s + d * (k - 1) + op) // 2  # the largest padding that leaves an output
    p_lo = d * (k - 1) + 1 if focus == "padding-crop" else 0
    if focus == "op-gt-padding":
        p_hi = min(p_hi, op - 1)
    return L, k, s, ints(p_lo, p_hi), op, d


DRAWN = "drawn"  # the batch argument of problems(): draw the batch size (the default)


def _geometry(input_shape, weight_shape, bias, stride, padding, output_padding, dilation, groups=1) -> Problem:
    return Problem(input_shape=input_shape, weight_shape=weight_shape, bias=bias, stride=stride, padding=padding,
                   output_padding=output_padding, dilation=dilation, groups=groups, dtype="float32")


# For implementations that compile per shape (fixed_geometries): a few geometries that between them
# lie in most bug-prone regions; each example draws one of them, with its own values (and layout).
GEOMETRY_POOL = (
    _geometry((2, 3, 5), (3, 2, 3), True, (2,), (1,), (1,), (1,)),  # output_padding > 0, Cin != Cout
    _geometry((2, 4), (2, 3, 1), False, (3,), (0,), (0,), (1,)),  # unbatched, k=1 with stride
    _geometry((1, 4, 4, 3), (4, 3, 3, 2), True, (2, 1), (1, 0), (1, 0), (2, 1), groups=2),  # stride+dilation, groups
    _geometry((2, 1, 2, 2), (1, 3, 4, 3), False, (2, 2), (2, 3), (0, 1), (1, 2)),  # kernel > input, taps cropped
    _geometry((1, 9, 3, 3), (9, 17, 1, 1), False, (2, 2), (0, 0), (1, 1), (1, 1)),  # channel blocks, op >= padding
    _geometry((1, 2, 3, 2, 2), (2, 1, 2, 2, 2), True, (2, 2, 1), (0, 1, 0), (1, 0, 0), (1, 1, 2), groups=2),  # 3d
    # a long axis; padding that crops whole taps; output_padding >= stride (dilation > stride); 3 groups
    _geometry((1, 3, 16), (3, 2, 3), True, (1,), (7,), (2,), (3,), groups=3),
)
# The regions a fixed geometry cannot hold (the batch, the memory layout and the dtype are the check's):
# the pool covers every other region of REGIONS (a project test holds it to that).
NOT_GEOMETRY_REGIONS = frozenset({"batch 0", "unbatched", "channels_last with a size-1 channel dim",
                                  "non-contiguous/expanded weight", "non-contiguous input", "fp16/bf16"})
for _template in GEOMETRY_POOL:
    _template.geometry()  # every template is valid


@st.composite
def pooled_problems(draw: st.DrawFn, dims: Sequence[int], dtype: str, value_kind: str, layouts: Sequence[str],
                    min_batch: int, batch: int | None | str) -> Problem:
    """A problem on one of :data:`GEOMETRY_POOL`'s geometries (batch set as asked): new values and, where
    the check asks for other layouts only, a drawn layout; every other check gets contiguous memory."""
    template = draw(_choice(tuple(t for t in GEOMETRY_POOL if t.dims in dims)))
    spatial_and_channels = template.input_shape[-template.dims - 1:]
    n = template.input_shape[0] if template.batched else None
    if batch != DRAWN:
        n = batch
    elif min_batch and (n or 0) < min_batch:
        n = min_batch
    allowed = [lay for lay in layouts if lay != "channels_last" or template.dims >= 2]
    layout = "contiguous" if "contiguous" in allowed else draw(_choice(tuple(allowed)))
    return template.replace(input_shape=((n,) if n is not None else ()) + spatial_and_channels, dtype=dtype,
                            value_kind=value_kind, layout=layout, seed=draw(SEEDS))


@st.composite
def problems(draw: st.DrawFn, dims: Sequence[int] = (1, 2, 3), dtype: str = "float32",
             value_kind: str = "real", layouts: Sequence[str] = LAYOUTS, min_batch: int = 0,
             batch: int | None | str = DRAWN, pool: float = 0.0) -> Problem:
    """A valid problem. ``batch`` forces a batch size (None: unbatched) unless it is ``DRAWN``;
    ``pool``: the weight of a problem on one of a few fixed geometries (:func:`pooled_problems`); 1: all."""
    # shrinking moves towards the pool (whose geometries are small already) and then to smaller values
    if pool >= 1 or (pool > 0 and draw(_integers(0, 99)) < round(100 * pool)):
        return draw(pooled_problems(dims, dtype, value_kind, layouts, min_batch, batch))
    axis_focus = draw(_choice(AXIS_FAMILY))
    channel_focus = draw(_choice(CHANNEL_FAMILY))
    focus = draw(_choice(OTHER_FAMILY))
    if focus == "3d" and 3 in dims:
        n_dims = 3
    else:
        n_dims = draw(_choice(tuple(sorted(dims))))
    # Many channels need small axes to fit the work cap; a 1x1 fast path needs k=1 on every axis.
    rest = "channel-blocks" if channel_focus == "channel-blocks" else OTHER_AXES.get(axis_focus, "free")
    first = "channel-blocks" if axis_focus == "free" and channel_focus == "channel-blocks" else axis_focus
    axes = [_axis(draw, n_dims, first if a == 0 else rest) for a in range(n_dims)]
    if focus == "per-axis-differ" and n_dims > 1:
        assume(len({axis[1:] for axis in axes}) > 1)
    L, k, s, p, op, d = (tuple(values_) for values_ in zip(*axes))
    per_channel = math.prod(spec.output_size(L, k, s, p, op, d))
    assume(per_channel <= MAX_OUTPUT_ELEMENTS)

    if batch != DRAWN:
        n = batch
    elif focus == "batch0" and min_batch == 0:
        n = 0
    elif focus == "unbatched":
        n = None
    elif channel_focus == "channel-blocks":
        n = draw(_choice((1, 2, None))) if min_batch <= 2 else min_batch
    else:
        n = draw(_batch_sizes(min_batch))
    budget = MAX_OUTPUT_ELEMENTS // (per_channel * max(n or 1, 1))
    groups, cin_g, cout_g = _channels(draw, channel_focus, budget)
    allowed = [lay for lay in layouts if lay != "channels_last" or n_dims >= 2]
    if focus == "channels-last-size1" and "channels_last" in allowed:
        layout_options = ("channels_last",)
        groups, cin_g, cout_g = 1, *draw(_choice(((1, cout_g), (cin_g, 1))))
    elif focus == "odd-layout" and set(allowed) - {"contiguous", "channels_last"}:
        layout_options = tuple(lay for lay in allowed if lay not in ("contiguous", "channels_last"))
    else:
        layout_options = tuple(allowed)
    layout, bias = draw(_layout_and_bias(layout_options))
    cin = groups * cin_g
    input_shape = ((cin,) if n is None else (n, cin)) + L
    return Problem(input_shape=input_shape, weight_shape=(cin, cout_g) + k, bias=bias,
                   stride=s, padding=p, output_padding=op, dilation=d, groups=groups, dtype=dtype,
                   value_kind=value_kind, layout=layout, seed=draw(SEEDS))


@functools.cache
def _layout_and_bias(layouts: tuple[str, ...]) -> st.SearchStrategy[tuple[str, bool]]:
    """A layout of ``layouts`` and whether there is a bias, as one choice (shrinking: the first layout, no
    bias). Joint choices make a problem cheaper to draw; each stays under 256 options, since Hypothesis
    draws an index up to 256 uniformly and larger ones ever more rarely. (Joint choices over an axis's
    values drew faster still but shrank worse: a planted TF32 bug to 14 elements instead of 2.)"""
    return st.sampled_from(list(itertools.product(layouts, (False, True))))


@functools.cache
def _batch_sizes(min_batch: int) -> st.SearchStrategy[int | None]:
    """A batch of 1-3 (at least ``min_batch``), 0 (where ``min_batch`` is 0) or none (unbatched), each
    branch equally likely.
    (A sampled_from over the same sizes draws faster but shrank a planted bug to 14 elements, not 2.)"""
    return st.one_of(st.integers(max(1, min_batch), 3), st.just(0) if min_batch == 0 else st.nothing(), st.none())


def _channels(draw: st.DrawFn, focus: str, budget: int) -> tuple[int, int, int]:
    """``(groups, Cin/groups, Cout/groups)`` with ``groups * Cout/groups <= budget``."""
    g_lo, cin_lo, cin_hi, cout_lo = 1, 1, 4, 1
    if focus == "groups":
        g_lo, cout_lo = 2, 2
    elif focus == "depthwise":
        g_lo, cin_hi = 2, 1
    elif focus == "channel-blocks":
        groups = draw(_integers(1, 2)) if budget >= 2 else 1
        cap = max(budget // groups, 1)  # output channels per group that fit the work cap
        fitting = tuple(c for c in CHANNEL_BLOCK_SIZES if c <= cap)
        cout_g = draw(_choice(fitting)) if cap >= 7 else draw(_integers(1, cap))
        return groups, draw(BLOCK_OR_ANY), cout_g
    assume(g_lo * cout_lo <= budget)
    return draw(_channel_triples(g_lo, cin_lo, cin_hi, cout_lo, min(budget, 16), focus == "cin-ne-cout"))


@functools.cache
def _channel_triples(g_lo: int, cin_lo: int, cin_hi: int, cout_lo: int, budget: int,
                     cin_ne_cout: bool) -> st.SearchStrategy[tuple[int, int, int]]:
    """``(groups, Cin/groups, Cout/groups)`` as one choice, distributed as three draws in turn: groups
    and Cin/groups uniform, then Cout/groups uniform on what the work cap leaves for those groups
    (each triple repeated in inverse proportion to that count). Past a budget of 16 every range is
    whole: ``budget`` is capped there so that the strategy is shared."""
    cout_counts = {g: min(4, budget // g) - cout_lo + 1 for g in range(g_lo, min(4, budget // cout_lo) + 1)}
    common = math.lcm(*cout_counts.values())
    return st.sampled_from([(g, cin, cout) for g, count in cout_counts.items() for cin in range(cin_lo, cin_hi + 1)
                            for cout in range(cout_lo, cout_lo + count) if not (cin_ne_cout and cin == cout)
                            for _ in range(common // count)])


# -- invalid problems -------------------------------------------------------------------------
OTHER_DTYPE = {"float32": "float64", "float64": "float32", "float16": "float32", "bfloat16": "float32",
               "complex64": "complex128", "complex128": "complex64"}


def _set_axis(values: tuple[int, ...], axis: int, value: int) -> tuple[int, ...]:
    return values[:axis] + (value,) + values[axis + 1:]


InvalidRule = Callable[[st.DrawFn, Problem, int], Problem]
# Each validity rule, as a function that breaks it on one axis of a valid problem, leaving the others intact.
INVALID_RULES: dict[str, InvalidRule] = {}


def _rule(name: str) -> Callable[[InvalidRule], InvalidRule]:
    def decorator(breaks: InvalidRule) -> InvalidRule:
        INVALID_RULES[name] = breaks
        return breaks

    return decorator


def _axis_of(p: Problem, axis: int) -> tuple[int, int, int, int, int]:
    """``(L, k, s, op, d)`` of one spatial axis."""
    return (p.input_shape[-p.dims + axis], p.weight_shape[2 + axis], p.stride[axis], p.output_padding[axis],
            p.dilation[axis])


@_rule("output_padding >= max(stride, dilation)")
def _output_padding_too_big(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    _, _, s, _, d = _axis_of(p, axis)
    return p.replace(output_padding=_set_axis(p.output_padding, axis, max(s, d) + draw(st.integers(0, 2))))


@_rule("stride < 1")
def _stride_below_one(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    return p.replace(stride=_set_axis(p.stride, axis, draw(st.integers(-2, 0))))


@_rule("dilation < 1")
def _dilation_below_one(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    return p.replace(dilation=_set_axis(p.dilation, axis, draw(st.integers(-2, 0))))


@_rule("padding < 0")
def _negative_padding(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    return p.replace(padding=_set_axis(p.padding, axis, draw(st.integers(-3, -1))))


@_rule("output_padding < 0")
def _negative_output_padding(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    return p.replace(output_padding=_set_axis(p.output_padding, axis, draw(st.integers(-3, -1))))


@_rule("groups < 1")
def _groups_below_one(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    return p.replace(groups=draw(st.integers(-1, 0)), bias_shape=(p.out_channels,) if p.bias else None)


@_rule("groups does not divide Cin")
def _groups_not_dividing(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    groups = draw(st.integers(2, 4))
    cin = groups * draw(st.integers(0, 2)) + draw(st.integers(1, groups - 1))
    lead = p.input_shape[:-p.dims]
    return p.replace(groups=groups, input_shape=lead[:-1] + (cin,) + p.input_shape[-p.dims:],
                     weight_shape=(cin,) + p.weight_shape[1:])


@_rule("weight.shape[0] != Cin")
def _weight_rows_differ(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    return p.replace(weight_shape=(p.weight_shape[0] + p.groups * draw(st.integers(1, 2)),) + p.weight_shape[1:])


@_rule("bias length != Cout")
def _bias_length(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    delta = draw(st.sampled_from([1, 2] + ([-1] if p.out_channels > 1 else [])))
    return p.replace(bias=True, bias_shape=(p.out_channels + delta,))


@_rule("weight dtype != input dtype")
def _weight_dtype(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    return p.replace(weight_dtype=OTHER_DTYPE[p.dtype])


@_rule("bias dtype != input dtype")
def _bias_dtype(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    complex_input = p.dtype.startswith("complex")
    others = [dt for dt in spec.DTYPES if dt != p.dtype and (dt.startswith("complex") or not complex_input)]
    return p.replace(bias=True, bias_dtype=draw(st.sampled_from(others)))


@_rule("output length < 1")
def _no_output(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    L, k, s, op, d = _axis_of(p, axis)
    too_much = -(-((L - 1) * s + d * (k - 1) + op + 1) // 2)  # makes that axis's output <= 0
    return p.replace(padding=_set_axis(p.padding, axis, too_much + draw(st.integers(0, 2))))


@_rule("empty weight")
def _empty_weight(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    if draw(st.booleans()):
        return p.replace(weight_shape=(p.weight_shape[0], 0) + p.weight_shape[2:])
    return p.replace(weight_shape=p.weight_shape[:2] + _set_axis(p.weight_shape[2:], axis, 0))


@_rule("input spatial size 0")
def _empty_input(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    return p.replace(input_shape=p.input_shape[:-p.dims] + _set_axis(p.input_shape[-p.dims:], axis, 0))


@_rule("input has the wrong number of dimensions")
def _input_rank(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    # Valid inputs have dims+1 (unbatched) or dims+2 dimensions: give dims or dims+3.
    spatial_only = p.input_shape[-p.dims:]
    too_many = (1,) * (p.dims + 3 - len(p.input_shape)) + p.input_shape
    return p.replace(input_shape=draw(st.sampled_from([spatial_only, too_many])))


@_rule("per-axis tuple of the wrong length")
def _tuple_length(draw: st.DrawFn, p: Problem, axis: int) -> Problem:
    name = draw(st.sampled_from(["stride", "padding", "output_padding", "dilation"]))
    values = getattr(p, name)
    # PyTorch broadcasts a one-element sequence, so only lengths other than 1 and dims are wrong.
    wrong = values + (values[-1],) * draw(st.integers(1, 2))
    if p.dims == 3 and draw(st.booleans()):
        wrong = values[:2]
    return p.replace(**{name: wrong})


@st.composite
def invalid_problems(draw: st.DrawFn, dims: Sequence[int] = (1, 2, 3), dtype: str = "float32") -> Problem:
    """A problem that breaks exactly one validity rule (named in ``broken_rule``)."""
    return draw(invalid_problem_sets(dims, dtype, rules=1))[0]


DOMAIN_ATTEMPTS = 12  # draws per example before it is rejected: a narrow domain still fills the budget


@st.composite
def within_domain(draw: st.DrawFn, drawn: st.SearchStrategy[Problem], unmet: Callable[[Problem], list[str]],
                  inside: bool = True) -> Problem:
    """A problem of ``drawn`` inside an implementation's declared domain (``unmet`` gives the requirements
    it misses), or, with ``inside=False``, outside it. Redrawing within the example, instead of
    rejecting it, keeps the examples budget for problems that are actually checked."""
    for _ in range(DOMAIN_ATTEMPTS):
        problem = draw(drawn)
        if bool(unmet(problem)) != inside:
            return problem
    assume(False)
    raise AssertionError("unreachable")


@st.composite
def invalid_problem_sets(draw: st.DrawFn, dims: Sequence[int] = (1, 2, 3), dtype: str = "float32",
                         rules: int = 4, among: Sequence[str] = tuple(INVALID_RULES),
                         pool: float = 0.0) -> list[Problem]:
    """``rules`` problems, each breaking a different validity rule (of those named in ``among``) of one
    valid base problem. Checking several rules per example makes even a 30-example run meet every
    rule with high probability."""
    chosen = draw(st.lists(st.sampled_from(list(among)), min_size=rules, max_size=rules, unique=True))
    base = draw(problems(dims=dims, dtype=dtype, layouts=("contiguous",), min_batch=1, pool=pool))
    return [INVALID_RULES[rule](draw, base, draw(st.integers(0, base.dims - 1))).replace(broken_rule=rule)
            for rule in chosen]
