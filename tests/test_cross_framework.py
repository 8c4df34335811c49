"""ONNX Runtime and JAX run through the whole gate, across the whole parameter space, with every
difference from PyTorch's contract either absent or declared with its reason."""

from __future__ import annotations

import importlib.util

import pytest

import impls
from reports.records import read_report

EXTRAS = {"onnxruntime-cpu": "onnxruntime", "jax-cpu": "jax"}


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_an_extra_is_listed_with_a_reason_when_missing(name):
    impl = impls.get(name)
    if importlib.util.find_spec(EXTRAS[name]) is None:
        assert not impl.available and "not installed" in impl.unavailable_reason
    else:
        assert impl.available


@pytest.mark.skipif(any(importlib.util.find_spec(p) is None for p in EXTRAS.values()),
                    reason="the onnxruntime/onnx and jax extras are not installed (requirements-extras.txt)")
def test_the_gate_passes_on_both_frameworks_with_their_differences_declared(tmp_path, gate):
    out = tmp_path / "out"
    run = gate("--impl", "onnxruntime-cpu", "--impl", "jax-cpu", "--report-dir", str(out))
    assert run.returncode == 0, run.output[-5000:]
    report = read_report(out / "report.json")
    ran = {row["impl"] for row in report["summary"]["table"] if row["examples"]}
    assert ran == set(EXTRAS)
    known = {record["rule"]["id"] for record in report["discrepancies"] if record["status"] == "known"}
    assert "onnxruntime-refuses-output-padding-at-or-above-stride" in known
    assert "jax-lhs-dilation-spreads-non-finite" in known
