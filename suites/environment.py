"""The environment a run checked: versions, devices and the backend flags that change results."""

from __future__ import annotations

import os
import platform
import re
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


# oneDNN's x86 instruction sets, best first, with the CPU flags (as /proc/cpuinfo names them) each needs:
# the one it dispatches to decides which kernel (and which kernel's bugs) a convolution meets.
_ONEDNN_ISAS = (
    ("avx512_core_amx_fp16", {"amx_fp16", "amx_bf16", "amx_tile", "avx512_fp16"}),
    ("avx512_core_amx", {"amx_bf16", "amx_int8", "amx_tile", "avx512_bf16"}),
    ("avx512_core_fp16", {"avx512_fp16", "avx512_bf16"}),
    ("avx512_core_bf16", {"avx512_bf16", "avx512_vnni"}),
    ("avx512_core_vnni", {"avx512_vnni", "avx512bw"}),
    ("avx512_core", {"avx512bw", "avx512vl", "avx512dq"}),
    ("avx2_vnni_2", {"avx_ne_convert", "avx_vnni_int8", "avx2"}),
    ("avx2_vnni", {"avx_vnni", "avx2"}),
    ("avx2", {"avx2"}),
    ("sse41", {"sse4_1"}),
)


def onednn_isa(flags: set[str] | None = None) -> str | None:
    """The instruction set oneDNN dispatches to on this x86 CPU (capped by ONEDNN_MAX_CPU_ISA, as oneDNN
    does), or None where the CPU flags cannot be read."""
    if flags is None:
        flags = _cpu_flags()
    if not flags:
        return None
    names = [name for name, _ in _ONEDNN_ISAS]
    isa = next((name for name, needs in _ONEDNN_ISAS if needs <= flags), None)
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").lower()
    if isa and cap in names and names.index(cap) > names.index(isa):
        isa = cap
    return isa


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def onednn_version() -> str | None:
    """oneDNN's version in this torch build, from its build configuration."""
    match = re.search(r"(?:oneDNN|MKL-DNN) v([0-9.]+)", torch.__config__.show())
    return match.group(1) if match else None


def machine_facts() -> dict[str, Any]:
    """What expectation rules may ask of the machine (``machine = {...}``, ``seen_on = {...}``): whether
    PyTorch's CPU convolutions take oneDNN at all and in the half types here (PyTorch's own probes of
    oneDNN's type support), and which of oneDNN's instruction sets and versions runs them. PyTorch sends
    bfloat16 there on CPUs with AVX-512 (BW, VL, DQ) or AVX-NE-CONVERT and float16 only on CPUs with
    AVX512-FP16 or AVX-NE-CONVERT, so oneDNN's half-precision defects show in float16 on those machines
    alone; within them, the instruction set picks the kernel."""
    available = torch.backends.mkldnn.is_available()
    facts = {"onednn_available": available, "bfloat16_on_onednn": False, "float16_on_onednn": False,
             "onednn_isa": onednn_isa() if available else None, "onednn_version": onednn_version()}
    if available:
        probes = {"bfloat16_on_onednn": "_is_mkldnn_bf16_supported", "float16_on_onednn": "_is_mkldnn_fp16_supported"}
        try:
            facts.update({fact: bool(getattr(torch.ops.mkldnn, probe)()) for fact, probe in probes.items()})
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
