"""Every check, registered: the forward checks (:mod:`.checks`), the gradient checks
(:mod:`.backward_checks`), the model-size check (:mod:`.model_size_checks`) and the module checks
(:mod:`.module_checks`). Import the registry from here wherever every check must be known (the tests, the
corpus, the summary, repro)."""

from __future__ import annotations

from . import backward_checks, model_size_checks, module_checks  # noqa: F401  (register their checks)
from .checks import CALL_FINDINGS, CHECKS, Check, Untrusted, check_for, run_on

VALUE_CHECKS = tuple(name for name, registered in CHECKS.items() if registered.compares_values)

__all__ = ["CALL_FINDINGS", "CHECKS", "VALUE_CHECKS", "Check", "Untrusted", "check_for", "run_on"]
