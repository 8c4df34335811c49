"""Time the reference (``impls.naive.reference``: the definition in float64, every product formed at once),
the naive per-tap implementation and the other built-ins against torch's CPU kernel on small, mid-size and
large problems, in float64 and float32.

    python benchmarks/reference_speed.py
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convt_conformance import impls  # noqa: E402
from convt_conformance.reference import reference  # noqa: E402

PROBLEMS = {
    "small  N1 C4->4 8x8 k3 s2": ((1, 4, 8, 8), (4, 4, 3, 3), 2),
    "mid    N2 C16->16 32x32 k4 s2": ((2, 16, 32, 32), (16, 16, 4, 4), 2),
    "large  N8 C64->32 64x64 k4 s2": ((8, 64, 64, 64), (64, 32, 4, 4), 2),
}


def best_of(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    for name in ("reference", "naive", "im2col", "zero-insertion", "torch-cpu-default"):
        fn = reference if name == "reference" else impls.get(name).fn
        for label, (x_shape, w_shape, stride) in PROBLEMS.items():
            for dtype in (torch.float64, torch.float32):
                x, w = torch.randn(x_shape, dtype=dtype), torch.randn(w_shape, dtype=dtype)
                seconds = best_of(lambda: fn(x, w, None, stride=stride))  # noqa: B023
                print(f"{name:18} {label:32} {str(dtype)[6:]:8} {seconds * 1e3:9.2f} ms", flush=True)


if __name__ == "__main__":
    main()
