"""TensorFlow's transposed convolution (``tf.nn.conv{1,2,3}d_transpose``, CPU) as a registered implementation.

The call is mapped and nothing more: channels-last tensors (TensorFlow's CPU kernels take only
``NWC``/``NHWC``/``NDHWC``), the weight ``(C_in, C_out, k...)`` as filters ``(k..., C_out, C_in)``,
``output_shape`` from the output-length formula (TensorFlow takes the output size instead of
output_padding), PyTorch's padding as explicit per-side padding (2d only: the 1d and 3d functions
take only ``"VALID"`` or ``"SAME"``), and the bias added with ``tf.nn.bias_add``. What TensorFlow's
API cannot express is declared as the implementation's domain, so the gate checks values inside it and
clean refusals outside it.

TensorFlow is imported on the first call, not with the project (it takes seconds); contained runs
preload it into the worker processes' fork server instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

import torch

from .. import spec
from .registry import register, register_missing

NAME = "tensorflow-cpu"
DESCRIPTION = "tf.nn.conv{1,2,3}d_transpose, channels last, explicit output_shape; CPU"
_DTYPES = ("float32", "float64")


def _version() -> str:
    for distribution in ("tensorflow", "tensorflow-cpu", "tf-nightly"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "?"


def _padding_only_in_2d(problem) -> bool:
    return problem.dims == 2 or not any(problem.padding)


def _dilation_where_supported(problem) -> bool:
    return not ((any(problem.padding) or problem.dtype == "float64") and any(d > 1 for d in problem.dilation))


# What TensorFlow's API and CPU kernels serve, beyond dims and dtypes (the README's porting table).
DOMAIN = {
    "groups == 1 (no grouped transposed convolution)": lambda p: p.groups == 1,
    "padding == 0 in 1d and 3d (only 'VALID'/'SAME' there)": _padding_only_in_2d,
    "dilation == 1 where padding > 0, and in float64 (CPU kernels)": _dilation_where_supported,
    "output_padding < stride (output_shape must round back to the input length)": lambda p: all(
        op < s for op, s in zip(p.output_padding, p.stride)),
}

if importlib.util.find_spec("tensorflow") is None:  # an optional extra
    register_missing(NAME, "tensorflow not installed; pip install tensorflow-cpu", dtypes=_DTYPES,
                     description=DESCRIPTION)
else:
    _tf = []  # the module, once imported

    def _tensorflow():
        if not _tf:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # errors come back as exceptions
            import tensorflow

            threads = torch.get_num_threads()  # the share of the cores this process was given
            tensorflow.config.threading.set_intra_op_parallelism_threads(threads)
            tensorflow.config.threading.set_inter_op_parallelism_threads(1)
            _tf.append(tensorflow)
        return _tf[0]

    @register(NAME, dims=(1, 2, 3), devices=("cpu",), dtypes=_DTYPES, domain=DOMAIN, description=DESCRIPTION,
              version=_version(), third_party=True, preload="tensorflow")
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        tf = _tensorflow()
        dims = weight.dim() - 2
        if groups != 1:
            raise NotImplementedError("tf.nn.conv_transpose has no groups")
        # what building the call needs: one value per axis (zip would drop extra axes)
        stride_t, padding_t, output_padding_t, dilation_t = (spec.as_tuple(value, dims, name) for name, value in (
            ("stride", stride), ("padding", padding), ("output_padding", output_padding), ("dilation", dilation)))
        if any(padding_t) and dims != 2:
            raise NotImplementedError(f"tf.nn.conv{dims}d_transpose takes only 'VALID' or 'SAME' padding")
        unbatched = input.dim() == weight.dim() - 1
        x = input.unsqueeze(0) if unbatched else input
        lengths = [spec.output_length(*axis) for axis in zip(
            x.shape[2:], weight.shape[2:], stride_t, padding_t, output_padding_t, dilation_t)]
        channels_last = (0,) + tuple(range(2, dims + 2)) + (1,)
        x_tf = tf.constant(x.detach().cpu().permute(channels_last).contiguous().numpy())
        filters = tf.constant(weight.detach().cpu().permute(tuple(range(2, dims + 2)) + (1, 0)).contiguous().numpy())
        pads = "VALID" if not any(padding_t) else [[0, 0]] + [[p, p] for p in padding_t] + [[0, 0]]
        transpose = {1: tf.nn.conv1d_transpose, 2: tf.nn.conv2d_transpose, 3: tf.nn.conv3d_transpose}[dims]
        y = transpose(x_tf, filters, [x.shape[0], *lengths, weight.shape[1]], strides=[1, *stride_t, 1],
                      padding=pads, dilations=[1, *dilation_t, 1])
        if bias is not None:
            y = tf.nn.bias_add(y, tf.constant(bias.detach().cpu().contiguous().numpy()))
        result = torch.from_numpy(y.numpy()).permute((0, dims + 1) + tuple(range(1, dims + 1))).contiguous()
        return result[0] if unbatched else result
