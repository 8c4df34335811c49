"""Model sizes: the per-problem memory cap, what a problem needs, and the search around the catalog's
layers and past the channel-block edges.

The search draws channel counts up to 1024 per group (the 64/128/256/512/1024 block edges and the counts
either side of them, and any count), kernels up to 64 taps per axis, strides up to 16 and batches up to
64, near a catalog layer's geometry or freely. A draw fits two caps: the work (multiply-adds) and the
elements of any one tensor. Lists run from small to large, so shrinking ends on the smallest size at which
a fault still shows: the report names the threshold.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence

import torch
from hypothesis import assume
from hypothesis import strategies as st

from convt_conformance import spec

from .catalog import LAYERS, Layer, plain_work
from .limits import Caps
from .problem import Problem
from .sampled import BLOCK_EDGES
from .strategies import SEEDS

# Channels per group, in three ranges drawn equally often (each from small to large): few, either side of a
# block edge, and the largest blocked path with its tail.
CHANNEL_RANGES = ((1, 2, 3, 4, 5, 6), tuple(sorted({9, 17, 33, 65, 129, 257, 513, *BLOCK_EDGES} - {1023, 1024})),
                  (1000, 1023, 1024))
KERNELS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 16, 17, 32, 64)
STRIDES = (1, 2, 3, 4, 5, 6, 8, 9, 16)
GROUPS = (1, 2, 3, 4, 8, 21, 32)
BATCHES = (1, 2, 3, 4, 5, 8, 16, 32, 64)
MEMORY_SHARE = 0.6  # of the memory free when the run starts, shared among the run's worker processes





def free_memory(device: str) -> int:
    """Bytes free on ``device`` now (for the CPU: the kernel's MemAvailable estimate)."""
    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@functools.cache
def memory_cap(device: str) -> int:
    """Bytes one model-size problem may need on ``device``: a share of what was free when first asked,
    divided among the run's worker processes (pytest-xdist's count)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return int(free_memory(device) * MEMORY_SHARE / max(workers, 1))


def stated_caps(devices: Sequence[str], caps: Caps) -> dict[str, str]:
    """The caps of this run's model-size problems, as the report states them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    memory = ", ".join(f"{memory_cap(device) / 2**30:.1f} GiB on {device}" for device in devices)
    return {"model_size_caps": f"memory per problem {memory} ({MEMORY_SHARE:.0%} of the memory free at the start, "
                               f"over {workers} worker process{'es' if workers > 1 else ''}); searched problems up "
                               f"to {caps.work:.3g} multiply-adds, {caps.elements:.3g} elements per tensor and "
                               f"{caps.taps} kernel taps"}


def tensor_elements(problem: Problem) -> tuple[int, int, int, int]:
    """Elements of the input, the weight, the output, and the largest workspace a plain algorithm builds: the
    input with zeros inserted and the kernel's reach padded on (zero insertion), or the columns of every
    output channel's taps at every input position (col2im)."""
    geometry = problem.geometry()
    n = max(geometry.batch, 1) if geometry.batched else 1
    spread = n * geometry.in_channels * math.prod((L - 1) * s + 2 * d * (k - 1) + 1 for L, k, s, d in zip(
        geometry.input_size, geometry.kernel_size, geometry.stride, geometry.dilation))
    columns = n * geometry.out_channels * math.prod(geometry.kernel_size) * math.prod(geometry.input_size)
    return (math.prod(problem.input_shape), math.prod(problem.weight_shape), math.prod(geometry.output_shape),
            max(spread, columns))


def footprint(problem: Problem, gradients: bool) -> int:
    """Bytes a model-size check holds at once: the values and the copies the implementation gets, its output and
    a plain algorithm's workspace; with gradients, the output's gradient twice, one gradient of each input and
    the float64 copies the adjoint identity's inner products make."""
    size = torch.empty((), dtype=spec.DTYPES[problem.dtype]).element_size()
    x, w, out, workspace = tensor_elements(problem)
    held = size * (2 * (x + w) + out + workspace)
    return held + (size * (2 * out + x + w) + 8 * (2 * out + x + w) if gradients else 0)


def fits(problem: Problem, device: str, gradients: bool) -> str | None:
    """Why ``problem`` does not fit the memory cap, or None."""
    need, cap = footprint(problem, gradients), memory_cap(device)
    return None if need <= cap else f"needs about {need / 2**30:.1f} GiB, over the cap of {cap / 2**30:.1f} GiB"


# -- the search ---------------------------------------------------------------------------------------------
@functools.cache
def _sampled_below(options: tuple[int, ...], most: int) -> st.SearchStrategy[int]:
    return st.sampled_from([o for o in options if o <= most] or [options[0]])


@functools.cache
def _channels_below(most: int) -> st.SearchStrategy[int]:
    return st.one_of([_sampled_below(options, most) for options in CHANNEL_RANGES if options[0] <= most]
                     or [st.just(1)])


def _axis_geometry(draw: st.DrawFn, layer: Layer | None, axis: int) -> tuple[int, int, int, int]:
    """``(k, s, d, p_wanted)`` of one axis: a layer's, or drawn (often ``k = 2s``, as upsampling layers are)."""
    if layer is not None:
        return layer.kernel[axis], layer.stride[axis], 1, layer.padding[axis]
    s = draw(st.sampled_from(STRIDES))
    k = 2 * s if draw(st.booleans()) else draw(st.sampled_from(KERNELS))
    d = draw(st.sampled_from((1, 2)))
    return k, s, d, draw(st.integers(0, max(d * (k - 1) // 2, 0)))


@st.composite
def model_size_problems(draw: st.DrawFn, dims: Sequence[int], dtype: str, caps: Caps,
                        layouts: Sequence[str] = ("contiguous", "channels_last")) -> Problem:
    """A valid problem near a catalog layer's geometry (or free), with many channels, within ``caps``."""
    layer = draw(st.sampled_from((None,) + tuple(layer for layer in LAYERS if layer.dims in dims)))
    n_dims = layer.dims if layer is not None else draw(st.sampled_from(tuple(sorted(dims))))
    axes = [_axis_geometry(draw, layer, a) for a in range(n_dims)]
    taps = math.prod(k for k, _, _, _ in axes)
    assume(taps <= caps.taps)
    strides = math.prod(s for _, s, _, _ in axes)  # zero insertion's work grows with them (catalog.plain_work)
    budget = min(caps.work // strides, caps.elements) // taps  # weight elements and work for one position
    assume(budget >= 1)
    cin_g = draw(_channels_below(budget))
    cout_g = draw(_channels_below(budget // cin_g))
    groups = draw(_sampled_below(GROUPS, budget // (cin_g * cout_g)))
    n = draw(_sampled_below(BATCHES, caps.work // (taps * cin_g * cout_g * groups * strides)))
    # input positions the caps leave (work, col2im's columns, the input), and the length per axis the input
    # may spread to with zeros inserted (zero insertion's workspace)
    room = min(caps.work // (taps * cin_g * cout_g * groups * n * strides),
               caps.elements // (n * groups * cout_g * taps), caps.elements // (n * groups * cin_g))
    reach = (caps.elements // (n * groups * max(cin_g, cout_g))) ** (1 / n_dims)
    sizes, per_axis_strides, pads, outs, kernels, dilations = [], [], [], [], [], []
    for k, s, d, p_wanted in axes:
        L = draw(st.integers(1, max(1, min(room, 4096, int((reach - 2 * d * (k - 1) - 1) // s) + 1))))
        room = max(room // L, 1)
        op = draw(st.integers(0, max(s, d) - 1))
        p = min(p_wanted, ((L - 1) * s + d * (k - 1) + op) // 2)
        sizes.append(L)
        per_axis_strides.append(s), pads.append(p), outs.append(op), kernels.append(k), dilations.append(d)
    allowed = tuple(lay for lay in layouts if lay != "channels_last" or n_dims >= 2)
    cin = groups * cin_g
    drawn = Problem(input_shape=(n, cin) + tuple(sizes), weight_shape=(cin, cout_g) + tuple(kernels),
                    bias=draw(st.booleans()), stride=tuple(per_axis_strides), padding=tuple(pads),
                    output_padding=tuple(outs), dilation=tuple(dilations), groups=groups, dtype=dtype,
                    layout=draw(st.sampled_from(allowed)), seed=draw(SEEDS))
    assume(max(tensor_elements(drawn)) <= caps.elements and plain_work(drawn) <= caps.work)
    return drawn
