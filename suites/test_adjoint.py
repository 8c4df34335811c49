"""Oracle 4: the adjoint identity <conv(y), x> = <y, convT(x)>, with torch's ordinary convolution."""

import math

import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from . import oracles
from .harness import Case, Evaluation, call, conclude, label
from .problem import term_count
from .strategies import problems

_CONVOLUTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def forward_convolution(y: torch.Tensor, weight: torch.Tensor, problem, input_size) -> torch.Tensor:
    """conv(y) with the same stride/padding/dilation/groups, in float64, truncated to the input's
    size: when output_padding >= stride the convolution has positions beyond x, and those never
    meet x in the inner product."""
    batched = y if problem.batched else y.unsqueeze(0)
    result = _CONVOLUTIONS[problem.dims](batched, weight, None, problem.stride, problem.padding,
                                         problem.dilation, problem.groups)
    window = (slice(None), slice(None)) + tuple(slice(0, L) for L in input_size)
    result = result[window]
    return result if problem.batched else result[0]


@given(data=st.data())
def test_adjoint(case: Case, data: st.DataObject) -> None:
    problem = data.draw(problems(dims=case.impl.dims, dtype=case.dtype_name, values="real", min_batch=1),
                        label="problem")
    problem = problem.replace(bias=False)  # the identity holds for the linear map
    evaluation = Evaluation(case, problem)
    assume(evaluation.untrusted_reason() is None)
    label(problem)
    x, w, _ = evaluation.values
    wide = torch.complex128 if x.is_complex() else torch.float64
    generator = torch.Generator().manual_seed(problem.seed ^ 0x5EED)
    y_probe = torch.randn(evaluation.geometry.output_shape, dtype=torch.float64, generator=generator).to(wide)
    conv_y = forward_convolution(y_probe, w.to(wide), problem, evaluation.geometry.input_size)
    convt_x = call(case, problem, evaluation.given)
    finding = oracles.check_shape(convt_x, evaluation.geometry.output_shape, case.dtype, case.device)
    if finding is None:
        conv_terms = problem.weight_shape[1] * math.prod(problem.weight_shape[2:])
        finding = oracles.check_adjoint(conv_y, x, y_probe, convt_x, evaluation.M, term_count(
            evaluation.values, problem), conv_terms, case.precision)
    conclude(case, problem, "adjoint", finding, evaluation.given)
