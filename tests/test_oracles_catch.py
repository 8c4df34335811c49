"""Correct implementations with other rounding behaviour are never flagged (tests/test_kill_rate.py
shows each planted bug is)."""

from __future__ import annotations

import re

import pytest

from convt_conformance.cli import main as repro_main

from .conftest import PLANTED
from .planted.catalog import CORRECT as CORRECT_NAMES
from .planted.catalog import CORRECT_MODULE as CORRECT
from .planted.catalog import CUSTOM_BACKWARD_MODULE, MODULE_VARIANTS_MODULE

BUGS = str(PLANTED / "oracle_bugs.py")
# Planted kernels never crash: calling them directly spares the worker processes of containment.
IN_PROCESS = ("--contain", "none")


def test_the_tf32_bug_passes_the_exact_tier(gate):
    """Small integers survive TF32 rounding: only the bound/statistical tier can see that bug."""
    run = gate("--impl-module", BUGS, "--impl", "bug-bound-tf32", "-k", "test_exact", *IN_PROCESS)
    assert run.returncode == 0, run.output[-3000:]


NEVER_FLAGGED = list(CORRECT_NAMES)
# The FFT variant is slow on large problems: it is checked where a transform differs, values and
# special values (at model sizes: tests/test_model_sizes.py). The per-channel Python loop of the reversed
# order takes seconds a call at model sizes: the model-size tests run the correct large-problem kernels.
ONLY = {"correct-fft": ("-k", "test_exact or test_bound or test_adjoint or test_layout or test_special_values"),
        "correct-reversed-order": ("-k", "not test_model_sizes and not test_catalog")}


@pytest.mark.slow
@pytest.mark.parametrize("variant", NEVER_FLAGGED)
def test_correct_variants_are_never_flagged(variant, gate):
    run = gate("--impl-module", CORRECT, "--impl", variant, *IN_PROCESS, *ONLY.get(variant, ()))
    assert run.returncode == 0, run.output[-5000:]
    checks = {check for check, n in re.findall(rf"^{variant}\s+(\S+)\s+(\d+)\s+0\s+0$", run.output, re.M)
              if int(n) > 0}
    assert checks >= {"exact", "bound", "adjoint"}, run.output[-5000:]


@pytest.mark.slow
def test_a_correct_custom_backward_is_never_flagged(gate):
    """A torch.autograd.Function with a hand-written backward (working precision, its own summation
    order) passes every gradient check, double backward included."""
    run = gate("--impl-module", CUSTOM_BACKWARD_MODULE, "--impl", "correct-custom-backward", *IN_PROCESS,
               "-k", "test_grad or test_double_backward")
    assert run.returncode == 0, run.output[-5000:]
    checks = {check for check, n in re.findall(r"^correct-custom-backward\s+(\S+)\s+(\d+)\s+0\s+0$", run.output,
                                                re.M) if int(n) > 0}
    assert checks == {"grad-exact", "grad-bound", "double-backward", "grad-determinism"}, run.output[-5000:]


def test_a_correct_module_class_is_never_flagged(gate):
    """A plugin's module class that accepts every output size the operation allows (wider than
    PyTorch's module) passes the module checks, values and gradients included."""
    run = gate("--impl-module", MODULE_VARIANTS_MODULE, "--impl", "correct-module-full-output-size-range",
               *IN_PROCESS, "-k", "test_output_size or test_module_parameters or test_exact or test_grad_exact")
    assert run.returncode == 0, run.output[-5000:]
    checks = {check for check, n in re.findall(r"^correct-module-full-output-size-range\s+(\S+)\s+(\d+)\s+0\s+0$",
                                                run.output, re.M) if int(n) > 0}
    assert checks == {"output-size", "module-parameters", "exact", "grad-exact"}, run.output[-5000:]


@pytest.mark.slow
def test_autograd_of_convolution_is_correct_for_finite_values(gate, capsys):
    """The autograd route is correct arithmetic, but its backward kernel multiplies structural zeros
    by the weights, so non-finite values spread as in zero insertion: it declares special_values=False,
    and passes the gate, corpus replays included (which would flag it, as a repro shows)."""
    run = gate("--impl-module", CORRECT, "--impl", "correct-autograd-of-convolution", *IN_PROCESS)
    assert run.returncode == 0, run.output[-5000:]
    assert "special-values not checked (it declares special_values=False" in run.output
    # A minimal problem of that kind: the output_padding tail has no terms (exactly 0 by
    # the definition), and the autograd route puts NaN there.
    problem = ('{"input_shape": [1, 1, 1], "weight_shape": [1, 1, 1], "bias": false, "stride": [1], '
               '"padding": [0], "output_padding": [1], "dilation": [2], "groups": 1, "dtype": "float64", '
               '"value_kind": "special", "seed": 0}')
    status = repro_main(["repro", "--impl", "correct-autograd-of-convolution", "--check", "special-values",
                         "--impl-module", CORRECT, "--problem", problem])
    printed = capsys.readouterr().out
    assert status == 1 and "reproduced: special-values" in printed, printed
