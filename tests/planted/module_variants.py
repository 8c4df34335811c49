"""Module classes as a plugin registers them (``impls.register_module``): the output_size bugs of the
history planted into subclasses of ``nn.ConvTranspose{1,2,3}d``, and a correct class that accepts every
output size the operation allows."""

from __future__ import annotations

from torch import nn

from convt_conformance import register_module

_TORCH = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def _classes(mixin: type) -> dict[int, type[nn.Module]]:
    return {dims: type(f"{mixin.__name__}{dims}d", (mixin, base), {}) for dims, base in _TORCH.items()}


class AlwaysBatched:
    """#75889: output_size counted as if the input always had a batch dimension."""

    def _output_padding(self, input, output_size, stride, padding, kernel_size, num_spatial_dims, dilation=None):
        if output_size is None or input.dim() == num_spatial_dims + 2:
            return super()._output_padding(input, output_size, stride, padding, kernel_size, num_spatial_dims,
                                           dilation)
        sizes = list(output_size)[-num_spatial_dims:] if len(output_size) == num_spatial_dims + 2 else output_size
        if len(sizes) != num_spatial_dims:
            raise ValueError(f"output_size must have {num_spatial_dims} or {num_spatial_dims + 2} elements")
        lengths = [input.size(axis + 2) if axis + 2 < input.dim() else 1 for axis in range(num_spatial_dims)]
        shortest = [(L - 1) * s - 2 * p + d * (k - 1) + 1
                    for L, s, p, d, k in zip(lengths, stride, padding, dilation, kernel_size)]
        return [n - low for n, low in zip(sizes, shortest)]


class DilationIgnored:
    """#14272: output_size turned into an output_padding without the dilation."""

    def _output_padding(self, input, output_size, stride, padding, kernel_size, num_spatial_dims, dilation=None):
        return super()._output_padding(input, output_size, stride, padding, kernel_size, num_spatial_dims, None)


class FullRange:
    """output_size up to the shortest length + max(stride, dilation) - 1 per axis: the operation's own
    range (PyTorch's module stops at + stride - 1)."""

    def _output_padding(self, input, output_size, stride, padding, kernel_size, num_spatial_dims, dilation=None):
        if output_size is None:
            return list(self.output_padding)
        lead = input.dim() - num_spatial_dims
        sizes = list(output_size)[lead:] if len(output_size) == num_spatial_dims + lead else list(output_size)
        if len(sizes) != num_spatial_dims:
            raise ValueError(f"output_size must have {num_spatial_dims} or {num_spatial_dims + lead} elements, "
                             f"got {len(output_size)}")
        shortest = [(input.size(lead + axis) - 1) * stride[axis] - 2 * padding[axis]
                    + dilation[axis] * (kernel_size[axis] - 1) + 1 for axis in range(num_spatial_dims)]
        widest = [max(low, 1) - 1 + max(s, d) if low < 1 else low + max(s, d) - 1
                  for low, s, d in zip(shortest, stride, dilation)]
        for n, low, high in zip(sizes, shortest, widest):
            if not max(low, 1) <= n <= high:
                raise ValueError(f"requested an output size of {sizes}, but valid sizes range from "
                                 f"{[max(low, 1) for low in shortest]} to {widest}")
        return [n - low for n, low in zip(sizes, shortest)]


# Subclasses of nn.ConvTranspose: PyTorch's own known discrepancies are theirs too, so only the planted bug is new.
register_module("bug-module-unbatched-output-size", _classes(AlwaysBatched), dtypes=("float32",),
                built_on="torch-module")
register_module("bug-module-output-size-ignores-dilation", _classes(DilationIgnored), dtypes=("float32",),
                built_on="torch-module")
# A subclass of nn.ConvTranspose: it inherits PyTorch's validation and kernels, and their known discrepancies.
register_module("correct-module-full-output-size-range", _classes(FullRange), dtypes=("float64", "float32"),
                grad=True, built_on="torch-module")
