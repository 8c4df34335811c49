"""JAX as a registered implementation: ``jax.lax.conv_general_dilated`` with ``lhs_dilation`` (the
transposed convolution as a convolution of the stride-dilated input), the kernel flipped and its
in/out channels swapped per group, PyTorch's padding and output_padding mapped to explicit per-side
padding ``(d(k-1) - p, d(k-1) - p + op)``. CPU; float64 through ``jax.enable_x64``, set for each call
only, so importing the project leaves JAX's global configuration as the user has it.

Registered only when ``jax`` is installed. Nothing is validated here beyond what building the call
needs: JAX's own domain is what the errors oracle checks.
"""

from __future__ import annotations

import torch

from .. import spec
from .registry import register, register_missing

NAME = "jax-cpu"
DESCRIPTION = "jax.lax.conv_general_dilated with lhs_dilation=stride and explicit padding, CPU"
_DTYPES = ("float64", "float32", "float16", "bfloat16", "complex64", "complex128")
# XLA compiles each new shape (about 50 ms on a CPU core, hundreds of times the call itself): most
# examples reuse a compiled fixed geometry (81% in 1,000 derandomized draws), the rest draw a new one.
POOLED_SHARE = 0.9

try:
    import jax
    import numpy as np
except ImportError as exc:  # an optional extra
    register_missing(NAME, f"jax not installed ({exc.name}); pip install jax", dtypes=_DTYPES,
                     description=DESCRIPTION)
else:
    import functools

    import jax.numpy as jnp
    from jax import lax

    _JAX_DTYPE = {torch.float64: jnp.float64, torch.float32: jnp.float32, torch.float16: jnp.float16,
                  torch.bfloat16: jnp.bfloat16, torch.complex64: jnp.complex64, torch.complex128: jnp.complex128}

    # Host arrays cross with device_put and numpy conversions: jnp.asarray and Array.astype compile a
    # small XLA computation for every new shape (about 9 ms each, three or four per new problem).
    def _to_jax(t: torch.Tensor):
        values = t.detach().cpu()
        if t.dtype == torch.bfloat16:  # torch's numpy bridge has no bfloat16: through float32 (exact)
            return jax.device_put(values.float().numpy().astype(jnp.bfloat16), _cpu())
        return jax.device_put(values.contiguous().numpy(), _cpu())

    @functools.cache
    def _cpu():
        return jax.devices("cpu")[0]

    def _to_torch(array, dtype: torch.dtype) -> torch.Tensor:
        if dtype == torch.bfloat16:  # exact: every bfloat16 is a float32
            return torch.from_numpy(np.asarray(array).astype(np.float32)).to(torch.bfloat16)
        return torch.from_numpy(np.array(array))

    @register(NAME, dims=(1, 2, 3), devices=("cpu",), dtypes=_DTYPES, description=DESCRIPTION,
              version=jax.__version__, third_party=True,
              fixed_geometries=POOLED_SHARE)
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        with jax.enable_x64(True), jax.default_device(_cpu()):
            return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation)

    # One compiled computation per geometry and shape: compiling each step on its own costs several
    # times more, since JAX compiles every operation it runs eagerly for each new shape.
    @functools.partial(jax.jit, static_argnames=("groups", "pads", "stride", "dilation", "accumulate_in_float32"))
    def _compiled(x, weight, bias, *, groups, pads, stride, dilation, accumulate_in_float32):
        dims = weight.ndim - 2
        cin, cout_g, *kernel = weight.shape
        w = weight.reshape(groups, cin // groups, cout_g, *kernel).swapaxes(1, 2)
        w = jnp.flip(w.reshape(groups * cout_g, cin // groups, *kernel), axis=tuple(range(2, 2 + dims)))
        layout = "DHW"[3 - dims:]
        y = lax.conv_general_dilated(x, w, (1,) * dims, pads, lhs_dilation=stride, rhs_dilation=dilation,
                                     dimension_numbers=("NC" + layout, "OI" + layout, "NC" + layout),
                                     feature_group_count=groups, precision=lax.Precision.HIGHEST,
                                     preferred_element_type=jnp.float32 if accumulate_in_float32 else None)
        if bias is not None:
            y = y + bias.astype(y.dtype).reshape((1, -1) + (1,) * dims)
        return y.astype(x.dtype)

    def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation):
        dims = weight.dim() - 2
        if input.dtype != weight.dtype or (bias is not None and bias.dtype != input.dtype):
            raise TypeError(f"jax-cpu needs matching dtypes, got {input.dtype}, {weight.dtype}")
        # What building the call needs (zip would silently drop extra axes, broadcasting a short bias):
        per_axis = {name: spec.as_tuple(value, dims, name) for name, value in (
            ("stride", stride), ("padding", padding), ("output_padding", output_padding), ("dilation", dilation))}
        if bias is not None and tuple(bias.shape) != (weight.shape[1] * groups,):
            raise ValueError(f"bias must have shape ({weight.shape[1] * groups},), got {tuple(bias.shape)}")
        unbatched = input.dim() == weight.dim() - 1
        x = _to_jax(input.unsqueeze(0) if unbatched else input)
        pads = tuple((d * (k - 1) - p, d * (k - 1) - p + op) for k, p, op, d in zip(
            weight.shape[2:], per_axis["padding"], per_axis["output_padding"], per_axis["dilation"]))
        half = input.dtype in (torch.float16, torch.bfloat16)
        y = _compiled(x, _to_jax(weight), None if bias is None else _to_jax(bias), groups=groups, pads=pads,
                      stride=per_axis["stride"], dilation=per_axis["dilation"], accumulate_in_float32=half)
        result = _to_torch(y, input.dtype)
        return result[0] if unbatched else result
