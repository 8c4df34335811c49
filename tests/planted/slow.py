"""A correct but slow implementation: it keeps a gate run busy so a test can kill it halfway."""

import time

from impls import register
from impls.naive import conv_transpose as naive


@register("slow-correct", dtypes=("float32",))
def slow(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    time.sleep(0.2)
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("slow-wrong-shape", dtypes=("float32",))
def slow_wrong_shape(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Wrong everywhere (one extra output channel) and slow: a campaign's clock ends its shrinking."""
    time.sleep(0.5)
    result = naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return result.new_zeros(result.shape[:-1] + (result.shape[-1] + 1,))
