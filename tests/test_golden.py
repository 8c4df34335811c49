"""Every implementation reproduces the seed example and hand-computed cases exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from convt_conformance import impls
from convt_conformance.reference import explain

SEED_OUTPUT = [
    [6, 12, 14, 12, 14, 12, 14, 7],
    [12, 24, 28, 24, 28, 24, 28, 14],
    [20, 40, 44, 40, 44, 40, 44, 22],
    [12, 24, 28, 24, 28, 24, 28, 14],
    [20, 40, 44, 40, 44, 40, 44, 22],
    [12, 24, 28, 24, 28, 24, 28, 14],
    [20, 40, 44, 40, 44, 40, 44, 22],
    [10, 20, 22, 20, 22, 20, 22, 11],
]


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


# (description, input, weight, bias, kwargs, expected), worked out by hand from the scatter view.
HAND_CASES = [
    ("1d stride 2: each input times the kernel, placed at 2*i",
     t([[[1, 2, 3]]]), t([[[1, 10]]]), None, dict(stride=2), t([[[1, 10, 2, 20, 3, 30]]])),
    ("1d stride 2, padding 1: the same, one element cropped from each end",
     t([[[1, 2, 3]]]), t([[[1, 10]]]), None, dict(stride=2, padding=1), t([[[10, 2, 20, 3]]])),
    ("1d dilation 2: tap t lands at i + 2t",
     t([[[1, 2, 3]]]), t([[[1, 10]]]), None, dict(dilation=2), t([[[1, 2, 13, 20, 30]]])),
    ("1d output_padding 1 >= stride 1, allowed by dilation 2: one more (zero) element at the end",
     t([[[1, 2]]]), t([[[1, 10]]]), None, dict(dilation=2, output_padding=1), t([[[1, 2, 10, 20, 0]]])),
    ("unbatched 1d, Cout 2",
     t([[1, 2]]), t([[[1, 1], [0, 3]]]), None, {}, t([[1, 3, 2], [0, 3, 6]])),
    ("groups 2, k=1, with bias: each group uses its own weight and bias",
     t([[[1], [2]]]), t([[[3]], [[5]]]), t([100, 200]), dict(groups=2), t([[[103], [210]]])),
    ("groups 2, Cout/groups 2: output channels of a group are contiguous",
     t([[[1], [10]]]), t([[[1], [2]], [[3], [4]]]), None, dict(groups=2), t([[[1], [2], [30], [40]]])),
    ("3d stride 2, 1x1x1 kernel 7: the value lands on even positions only",
     torch.ones(1, 1, 2, 2, 2, dtype=torch.float64), 7 * torch.ones(1, 1, 1, 1, 1, dtype=torch.float64), None,
     dict(stride=2), (7 * torch.tensor([1.0, 0, 1])[:, None, None] * torch.tensor([1.0, 0, 1])[None, :, None]
                      * torch.tensor([1.0, 0, 1])[None, None, :]).to(torch.float64)[None, None]),
]


# The golden cases are what the project's own implementations (and PyTorch's) must reproduce;
# third-party frameworks are judged by the gate, within the domain they declare.
# Plugins registered by other test modules (correct variants, planted bugs) are judged by the gate.
BUILT_IN = str(Path(impls.__file__).parent)
# Shape-only implementations (meta, FakeTensor) have no values to compare.
PROJECT = [impl for impl in impls.available() if impl.source.startswith(BUILT_IN)
           and not impl.extra.get("third_party") and not impl.shape_only]


def implementations(dims: int):
    return [pytest.param(impl, id=impl.name) for impl in PROJECT if dims in impl.dims]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("impl", implementations(2))
def test_seed_example(impl, dtype):
    if str(dtype).removeprefix("torch.") not in impl.dtypes:
        pytest.skip(f"{impl.name} does not declare {dtype}")
    x = torch.ones(1, 1, 4, 4, dtype=dtype)
    w = torch.arange(1, 17, dtype=dtype).reshape(1, 1, 4, 4)
    y = impl.fn(x, w, None, stride=2, padding=1)
    assert torch.equal(y, t([[SEED_OUTPUT]], dtype))


def test_explain_answers_the_seed_question():
    x = torch.ones(1, 1, 4, 4)
    w = torch.arange(1.0, 17).reshape(1, 1, 4, 4)
    corner = explain(x, w, None, (0, 0, 0, 0), stride=2, padding=1)
    assert corner.value == 6 and [(i, k, p) for i, k, p in corner.terms] == [((0, 0, 0, 0), (0, 0, 1, 1), 6.0)]
    beside = explain(x, w, None, (0, 0, 0, 1), stride=2, padding=1)
    assert beside.value == 12 and sorted(p for _, _, p in beside.terms) == [5.0, 7.0]
    assert "= 12 is the sum of 2 product(s)" in beside.table()


def test_explain_includes_the_bias_and_rejects_outside_indexes():
    x, w, b = torch.ones(1, 2, 2), torch.ones(2, 1, 1), torch.tensor([0.5])
    explanation = explain(x, w, b, (0, 0, 1))
    assert explanation.bias == 0.5 and explanation.value == 2.5 and len(explanation.terms) == 2
    with pytest.raises(IndexError):
        explain(x, w, b, (0, 1, 0))


@pytest.mark.parametrize("hand_case", HAND_CASES, ids=[c[0] for c in HAND_CASES])
@pytest.mark.parametrize("impl", [pytest.param(impl, id=impl.name) for impl in PROJECT])
def test_hand_computed(impl, hand_case):
    _, x, w, b, kwargs, expected = hand_case
    if w.dim() - 2 not in impl.dims:
        pytest.skip(f"{impl.name} does not serve {w.dim() - 2}d")
    for dtype in (torch.float32, torch.float64):
        if str(dtype).removeprefix("torch.") not in impl.dtypes:
            continue  # a dtype it does not declare is not its contract
        y = impl.fn(x.to(dtype), w.to(dtype), None if b is None else b.to(dtype), **kwargs)
        assert torch.equal(y, expected.to(dtype)), f"{impl.name} {dtype}: {y} != {expected}"


def test_available_lists_the_builtins_on_cpu():
    names = {impl.name for impl in impls.available()}
    assert {"naive", "im2col", "zero-insertion", "torch-cpu-default", "torch-cpu-native",
            "torch-cpu-channels-last"} <= names


def test_cuda_implementations_are_listed_with_a_reason_when_unusable():
    for name in ("torch-cuda-cudnn", "torch-cuda-native"):
        impl = impls.get(name)
        if torch.cuda.is_available():
            assert impl.available
        else:
            assert not impl.available and "CUDA is not available" in impl.unavailable_reason
            assert impl not in impls.available()

