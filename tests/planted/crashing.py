"""Implementations that take their process down: the gate must contain them."""

import os
import signal
import time

from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose as naive


@register("segfault-on-groups", dtypes=("float32",))
def segfault_on_groups(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Dies with SIGSEGV on grouped problems, as kernels with a bad group offset do."""
    if groups > 1:
        print(f"segfault-on-groups: bad offset for group {groups - 1}", flush=True)  # a native library's last words
        os.kill(os.getpid(), signal.SIGSEGV)
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("hang-on-large-stride", dtypes=("float32",))
def hang_on_large_stride(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Never returns when some stride exceeds 2 (a loop that does not terminate)."""
    if any(s > 2 for s in ((stride,) if isinstance(stride, int) else stride)):
        time.sleep(3600)
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)


@register("exits-cleanly-on-dilation", dtypes=("float32",))
def exits_cleanly_on_dilation(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1):
    """Calls exit(0) in the middle of a call when a dilation exceeds 1, as a library that "handles" an
    unsupported case by ending the process does: still a crash."""
    if any(d > 1 for d in ((dilation,) if isinstance(dilation, int) else dilation)):
        os._exit(0)
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
