"""OpenVINO's ``ConvolutionBackpropData`` / ``GroupConvolutionBackpropData`` (CPU plugin) as a registered
implementation.

The call is mapped and nothing more: a one-node model per problem signature with explicit
``pads_begin = pads_end = padding``, ``output_padding``, strides and dilations; the weight ``(C_in,
C_out/g, k...)`` is OpenVINO's filter layout as it is (``(g, C_in/g, C_out/g, k...)`` for groups); the
bias is added in the model. The model is compiled with ``INFERENCE_PRECISION_HINT = f32``: on CPUs
with bfloat16 or float16 units the plugin would otherwise run float32 models in the lower precision.
Registered only when ``openvino`` is installed; nothing is validated here beyond what building the
model needs: OpenVINO's own domain is what the gate checks.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from .. import spec
from .registry import register, register_missing

NAME = "openvino-cpu"
DESCRIPTION = "OpenVINO ConvolutionBackpropData (GroupConvolutionBackpropData for groups), CPU plugin, f32 precision"

try:
    import numpy as np
    import openvino
    import openvino.opset15 as ops
except ImportError as exc:  # an optional extra
    register_missing(NAME, f"openvino not installed ({exc.name}); pip install openvino", dtypes=("float32",),
                     description=DESCRIPTION)
else:
    _CORE = []

    def _core() -> openvino.Core:
        if not _CORE:
            _CORE.append(openvino.Core())
        return _CORE[0]

    @lru_cache(maxsize=512)
    def _compiled(input_shape: tuple, weight_shape: tuple, bias_shape: tuple | None, strides: tuple,
                  padding: tuple, output_padding: tuple, dilations: tuple, groups: int, threads: int):
        x = ops.parameter(list(input_shape), np.float32, name="X")
        w = ops.parameter(list(weight_shape), np.float32, name="W")
        parameters = [x, w]
        arguments = dict(strides=list(strides), pads_begin=list(padding), pads_end=list(padding),
                         dilations=list(dilations), output_padding=list(output_padding))
        if groups == 1:
            y = ops.convolution_backprop_data(x, w, **arguments)
        else:
            cin, cout_g, *kernel = weight_shape
            grouped = ops.reshape(w, ops.constant(np.array([groups, cin // groups, cout_g, *kernel], np.int64)),
                                  special_zero=False)
            y = ops.group_convolution_backprop_data(x, grouped, **arguments)
        if bias_shape is not None:
            b = ops.parameter(list(bias_shape), np.float32, name="B")
            parameters.append(b)
            lengths = np.array([1, -1] + [1] * len(strides), np.int64)
            y = ops.add(y, ops.reshape(b, ops.constant(lengths), special_zero=False))
        model = openvino.Model([y.output(0)], parameters, "conv_transpose")
        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
        return _core().compile_model(model, "CPU", config)

    @register(NAME, dims=(1, 2, 3), devices=("cpu",), dtypes=("float32",), description=DESCRIPTION,
              version=openvino.__version__.split("-")[0], third_party=True)
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        dims = weight.dim() - 2
        if {t.dtype for t in (input, weight, bias) if t is not None} != {torch.float32}:
            raise TypeError("openvino-cpu is checked in float32 with matching dtypes")
        if bias is not None and tuple(bias.shape) != (weight.shape[1] * groups,):  # the Add below would broadcast it
            raise ValueError(f"bias must have shape ({weight.shape[1] * groups},), got {tuple(bias.shape)}")
        unbatched = input.dim() == weight.dim() - 1
        x = input.unsqueeze(0) if unbatched else input
        compiled = _compiled(tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape),
                             *(spec.per_axis(v, dims) for v in (stride, padding, output_padding, dilation)),
                             groups, torch.get_num_threads())
        feeds = [x.detach().cpu().contiguous().numpy(), weight.detach().cpu().contiguous().numpy()]
        if bias is not None:
            feeds.append(bias.detach().cpu().contiguous().numpy())
        y = compiled(feeds)[0]
        result = torch.from_numpy(np.array(y, dtype=np.float32))
        return result[0] if unbatched else result
