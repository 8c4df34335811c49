"""ONNX Runtime's ConvTranspose (CPU execution provider) as a registered implementation.

Each call builds (or reuses, by problem signature) a one-node model: ``ConvTranspose(X, W[, B])``
with strides, per-side pads (PyTorch's padding on both sides), dilations, group, output_padding and
kernel_shape. Registered only when ``onnxruntime`` and ``onnx`` are installed; listed as unavailable
otherwise. Nothing is validated here: ONNX Runtime's own domain is what the errors oracle checks.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from .. import spec
from .registry import register, register_missing

NAME = "onnxruntime-cpu"
# ONNX Runtime refuses output_padding >= stride ("output_padding may be too large for stride") even where
# dilation makes it valid in PyTorch (output_padding < max(stride, dilation)):
# https://github.com/microsoft/onnxruntime/issues/14208
DOMAIN = {"output_padding < stride": lambda p: all(op < s for op, s in zip(p.output_padding, p.stride))}
DESCRIPTION = "ONNX Runtime ConvTranspose, CPU execution provider (one-node model per problem signature)"
# A new session costs some thirty times a call: most examples reuse a fixed geometry's session (65% in
# 1,000 derandomized draws).
POOLED_SHARE = 0.8

try:
    import numpy as np
    import onnx  # noqa: F401  (helper below needs the package; importing it checks the extra is complete)
    import onnxruntime
    from onnx import TensorProto, helper
except ImportError as exc:  # an optional extra
    register_missing(NAME, f"onnxruntime/onnx not installed ({exc.name}); pip install onnxruntime onnx",
                     dtypes=("float32",), description=DESCRIPTION)
else:
    onnxruntime.set_default_logger_severity(4)  # errors come back as exceptions; keep stderr quiet
    _ELEMENT = {torch.float32: TensorProto.FLOAT, torch.float16: TensorProto.FLOAT16}
    _NUMPY = {torch.float32: np.float32, torch.float16: np.float16}

    @lru_cache(maxsize=512)
    def _session(dtype: torch.dtype, input_shape: tuple, weight_shape: tuple, bias: bool, strides: tuple,
                 pads: tuple, dilations: tuple, group: int, output_padding: tuple):
        element = _ELEMENT[dtype]
        inputs = [helper.make_tensor_value_info("X", element, list(input_shape)),
                  helper.make_tensor_value_info("W", element, list(weight_shape))]
        names = ["X", "W"]
        if bias:
            inputs.append(helper.make_tensor_value_info("B", element, [weight_shape[1] * group]))
            names.append("B")
        node = helper.make_node("ConvTranspose", names, ["Y"], strides=list(strides), pads=list(pads),
                                dilations=list(dilations), group=group, output_padding=list(output_padding),
                                kernel_shape=list(weight_shape[2:]))
        outputs = [helper.make_tensor_value_info("Y", element, None)]
        graph = helper.make_graph([node], "conv_transpose", inputs, outputs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4
        return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    @register(NAME, dims=(1, 2, 3), devices=("cpu",), dtypes=("float32", "float16"), description=DESCRIPTION,
              version=onnxruntime.__version__, third_party=True, domain=DOMAIN,
              fixed_geometries=POOLED_SHARE)
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        dtypes = {t.dtype for t in (input, weight, bias) if t is not None}
        if input.dtype not in _ELEMENT or len(dtypes) > 1:  # ONNX types X, W and B alike, as T
            raise TypeError(f"onnxruntime-cpu serves float32/float16 with matching dtypes, "
                            f"got {sorted(map(str, dtypes))}")
        dims = weight.dim() - 2
        unbatched = input.dim() == weight.dim() - 1
        x = input.unsqueeze(0) if unbatched else input
        padding_t = spec.per_axis(padding, dims)
        session = _session(input.dtype, tuple(x.shape), tuple(weight.shape), bias is not None,
                           spec.per_axis(stride, dims), padding_t + padding_t, spec.per_axis(dilation, dims), groups,
                           spec.per_axis(output_padding, dims))
        feeds = {"X": x.detach().cpu().contiguous().numpy(), "W": weight.detach().cpu().contiguous().numpy()}
        if bias is not None:
            feeds["B"] = bias.detach().cpu().contiguous().numpy()
        (y,) = session.run(None, feeds)
        result = torch.from_numpy(np.ascontiguousarray(y, dtype=_NUMPY[input.dtype]))
        return result[0] if unbatched else result
