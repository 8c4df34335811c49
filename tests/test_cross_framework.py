"""ONNX Runtime and JAX run through the whole gate, across the whole parameter space, with every
difference from PyTorch's contract either absent or declared with its reason."""

from __future__ import annotations

import importlib.util

import pytest

from convt_conformance import impls
from convt_conformance.reports.records import read_report

EXTRAS = {"onnxruntime-cpu": "onnxruntime", "jax-cpu": "jax", "tensorflow-cpu": "tensorflow",
          "openvino-cpu": "openvino"}


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_an_extra_is_listed_with_a_reason_when_missing(name):
    impl = impls.get(name)
    if importlib.util.find_spec(EXTRAS[name]) is None:
        assert not impl.available and "not installed" in impl.unavailable_reason
    else:
        assert impl.available


# Differences each framework must show in a full gate run (declared, so the gate passes).
DECLARED = {"onnxruntime-cpu": set(),
            "jax-cpu": {"jax-lhs-dilation-spreads-non-finite", "jax-xla-aborts-on-a-dilated-length-1-axis"},
            "tensorflow-cpu": {"tensorflow-accepts-empty-problems",
                               "tensorflow-float64-conv3d-transpose-segfaults-on-an-empty-axis"},
            "openvino-cpu": {"openvino-empty-input-returns-uninitialized-memory"}}
# Requirements each framework's declared domain must show refusals for in a full gate run.
DOMAINS = {"onnxruntime-cpu": {"output_padding < stride"},
           "tensorflow-cpu": {"groups == 1 (no grouped transposed convolution)",
                              "padding == 0 in 1d and 3d (only 'VALID'/'SAME' there)"}}


# XLA compiles every new shape (about 70 ms), so the JAX run here takes one dtype of each kind; the
# gate itself runs all six.
NARROWED = {"jax-cpu": ("--dtype", "float32", "--dtype", "bfloat16", "--dtype", "complex128")}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_the_gate_passes_on_each_framework_with_its_differences_declared(name, tmp_path, gate):
    if importlib.util.find_spec(EXTRAS[name]) is None:
        pytest.skip(f"{EXTRAS[name]} is not installed (pip install convt-conformance[frameworks])")
    out = tmp_path / "out"
    run = gate("--impl", name, "--report-dir", str(out), *NARROWED.get(name, ()))
    assert run.returncode == 0, run.output[-5000:]
    report = read_report(out / "report.json")
    assert {row["impl"] for row in report["summary"]["table"] if row["examples"]} == {name}
    known = {record["rule"]["id"] for record in report["discrepancies"] if record["status"] == "known"}
    assert DECLARED[name] <= known, known
    refused = {row["requirement"] for row in report["summary"]["domain"] if row["refused"]}
    assert DOMAINS.get(name, set()) <= refused, report["summary"]["domain"]
    assert not report["summary"]["stale_rules"], report["summary"]["stale_rules"]
