"""A correct but slow implementation: it keeps a gate run busy so a test can kill it halfway."""

import time

from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose as naive


@register("slow-correct", dtypes=("float32",))
def slow(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    time.sleep(0.05)
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("slow-wrong-shape", dtypes=("float32",))
def slow_wrong_shape(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Wrong (one extra output column) on inputs of 3 or more elements, and so slow there that a
    5-second campaign is over before the first failing call returns: its shrinking is cut off."""
    result = naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if input.numel() < 3:
        return result
    time.sleep(8)
    return result.new_zeros(result.shape[:-1] + (result.shape[-1] + 1,))
