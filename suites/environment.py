"""The environment a run checked: versions, devices and the backend flags that change results."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch

import convt_conformance


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    """What expectation rules may ask of the machine (``machine = {...}``): whether PyTorch's CPU
    convolutions take oneDNN in the half types here (PyTorch's own probes of oneDNN's type support).
    PyTorch sends bfloat16 there on CPUs with AVX-512 (BW, VL, DQ) or AVX-NE-CONVERT and float16 only on
    CPUs with AVX512-FP16 or AVX-NE-CONVERT, so oneDNN's half-precision defects show in float16 on those
    machines alone."""
    facts = {"bfloat16_on_onednn": False, "float16_on_onednn": False}
    if torch.backends.mkldnn.is_available():
        probes = {"bfloat16_on_onednn": "_is_mkldnn_bf16_supported", "float16_on_onednn": "_is_mkldnn_fp16_supported"}
        try:
            facts = {fact: bool(getattr(torch.ops.mkldnn, probe)()) for fact, probe in probes.items()}
        except (AttributeError, RuntimeError):  # a build without these probes
            pass
    return facts


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
        **machine_facts(),
        "python": sys.version.split()[0],
        "os": platform.platform(),
        "implementation_versions": dict(versions or {}),
    }


def _version_of(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def checkout_commit() -> str | None:
    """The commit a checkout is at (``+dirty`` with uncommitted changes), or None for an installed package."""
    if convt_conformance.CHECKOUT is None:
        return None
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(convt_conformance.CHECKOUT), *args], capture_output=True,
                                  text=True, timeout=10, check=True).stdout.strip()
        commit = git("rev-parse", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(profile: str, seed: object = None) -> dict[str, Any]:
    """What produced a report: the gate's version (and commit, from a checkout), the versions of the
    tools that drive it, its Hypothesis profile and seed (None: the profile's own, derandomized for ci)."""
    return {
        "convt_conformance": convt_conformance.__version__,
        "convt_conformance_commit": checkout_commit(),
        "hypothesis": _version_of("hypothesis"),
        "pytest": _version_of("pytest"),
        "pytest_xdist": _version_of("pytest-xdist"),
        "profile": profile,
        "seed": None if seed is None else str(seed),
    }
