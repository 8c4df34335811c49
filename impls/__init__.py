"""Implementations of transposed convolution: the specification, the registry and the built-ins.

Plugin authors write::

    from convt_conformance import register

    @register("my-kernel", dims=(1, 2, 3), devices=("cpu",), dtypes=("float32", "float64"))
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
        ...
"""

# registers the built-ins (the third-party adapters are listed as unavailable when their package is absent)
from . import (  # noqa: F401
    compiled,
    im2col,
    jax_backend,
    modules,
    naive,
    onnxruntime_backend,
    openvino_backend,
    shape_only,
    tensorflow_backend,
    torch_backends,
    zero_insertion,
)
from .modules import register_module
from .registry import (
    Implementation,
    PluginError,
    RegistryError,
    all_implementations,
    available,
    get,
    load_plugin,
    probe_plugins,
    register,
    select,
)

__all__ = ["Implementation", "PluginError", "RegistryError", "all_implementations", "available", "get",
           "load_plugin", "probe_plugins", "register", "register_module", "select"]
