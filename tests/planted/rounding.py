"""TF32 rounding, shared by a planted bug (undeclared) and a correct variant (declared)."""

from __future__ import annotations

import torch


def to_tf32(t: torch.Tensor) -> torch.Tensor:
    """Round float32 to TF32 (10 explicit mantissa bits, round half away from zero on the bits)."""
    if t.dtype != torch.float32:
        return t
    bits = t.contiguous().view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)
