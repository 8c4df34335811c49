"""The environment a run checked: versions, devices and the backend flags that change results."""

from __future__ import annotations

import platform
import sys
from typing import Any

import torch


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(versions: dict[str, str] | None = None) -> dict[str, Any]:
    """What a report's environment block shows; ``versions``: the version each implementation declares
    (``register(..., version=...)``), the framework's for an adapter."""
    cuda = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cpu": cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "onednn_enabled": torch.backends.mkldnn.enabled,
        "onednn_available": torch.backends.mkldnn.is_available(),
        "python": sys.version.split()[0],
        "os": platform.platform(),
        "implementation_versions": dict(versions or {}),
    }
