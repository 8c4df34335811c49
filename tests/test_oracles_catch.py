"""Each oracle can fail: a planted bug of its kind is caught by the real gate, by that oracle; and
correct implementations with other rounding behaviour are never flagged."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import PLANTED, ROOT
from .planted.catalog import CORRECT as CORRECT_NAMES
from .planted.catalog import CORRECT_MODULE as CORRECT

BUGS = str(PLANTED / "oracle_bugs.py")

# planted bug -> (the test that must catch it, the check named in the report, dtype to run)
PLANTED_BUGS = {
    "bug-shape-drops-output-padding": ("test_shape", "shape:", "float32"),
    "bug-exact-group0-bias": ("test_exact", "exact:", "float32"),
    "bug-bound-tf32": ("test_bound", "bound:", "float32"),
    "bug-adjoint-unflipped-stride-dilation": ("test_adjoint", "adjoint:", "float64"),
    "bug-errors-accepts-big-output-padding": ("test_invalid_raises", "invalid-accepted:", "float32"),
    "bug-errors-refuses-op-ge-stride": ("test_valid_accepted", "valid-refused:", "float32"),
    "bug-robust-modifies-input": ("test_inputs_unmodified", "inputs-unmodified:", "float32"),
    "bug-robust-assumes-contiguous": ("test_layout_invariance", "layout:", "float32"),
    "bug-robust-nan-through-padding": ("test_special_values", "special-values:", "float32"),
    "bug-robust-nondeterministic": ("test_determinism", "determinism:", "float64"),
}


@pytest.mark.parametrize("bug", sorted(PLANTED_BUGS))
def test_the_oracle_catches_its_planted_bug(bug, gate):
    test, check, dtype = PLANTED_BUGS[bug]
    run = gate("--impl-module", BUGS, "--impl", bug, "--dtype", dtype, "-k", test)
    assert run.returncode == 1, run.output[-3000:]
    assert run.failed(test), run.output[-3000:]
    assert f"{bug}-cpu-{dtype}: {check}" in run.output


def test_the_tf32_bug_passes_the_exact_tier(gate):
    """Small integers survive TF32 rounding: only the bound/statistical tier can see that bug."""
    run = gate("--impl-module", BUGS, "--impl", "bug-bound-tf32", "-k", "test_exact")
    assert run.returncode == 0, run.output[-3000:]


NEVER_FLAGGED = [name for name in CORRECT_NAMES if name != "correct-autograd-of-convolution"]


def test_correct_variants_are_never_flagged(gate):
    run = gate("--impl-module", CORRECT, *(arg for name in NEVER_FLAGGED for arg in ("--impl", name)))
    assert run.returncode == 0, run.output[-5000:]
    checked = {impl for impl, n in re.findall(r"^(correct-\S+)\s+\S+\s+(\d+)\s+0\s+0$", run.output, re.M)
               if int(n) > 0}
    assert checked == set(NEVER_FLAGGED), run.output[-5000:]


def test_autograd_of_convolution_is_correct_for_finite_values(gate):
    """The autograd route is correct arithmetic, but its backward kernel multiplies structural zeros
    by the weights, so non-finite values spread as in zero insertion: its special-value behaviour
    is not claimed (and is flagged, as it should be)."""
    run = gate("--impl-module", CORRECT, "--impl", "correct-autograd-of-convolution", "-k", "not special_values")
    assert run.returncode == 0, run.output[-5000:]
    # A minimal problem of that kind: the output_padding tail has no terms (exactly 0 by
    # the definition), and the autograd route puts NaN there.
    problem = ('{"input_shape": [1, 1, 1], "weight_shape": [1, 1, 1], "bias": false, "stride": [1], '
               '"padding": [0], "output_padding": [1], "dilation": [2], "groups": 1, "dtype": "float64", '
               '"values": "special", "seed": 0}')
    flagged = subprocess.run([sys.executable, "-m", "suites", "repro", "--impl", "correct-autograd-of-convolution",
                              "--check", "special-values", "--impl-module", CORRECT, "--problem", problem],
                             cwd=ROOT, capture_output=True, text=True)
    assert flagged.returncode == 1 and "reproduced: special-values" in flagged.stdout, flagged.stdout + flagged.stderr
