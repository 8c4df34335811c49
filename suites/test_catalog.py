"""Every layer of the catalog (``suites/catalog.py``) on every selected implementation and dtype, through the
model-size check: on a short input in the default gate, at the models' own sizes and across 2^31 elements
with ``--convt-profile scale``."""

from __future__ import annotations

import pytest

from .case import Case
from .catalog import Entry
from .checks import run_on
from .model_size_checks import MODEL_SIZE
from .run import Run
from .sizes import fits
from .verdicts import conclude


def test_catalog(case: Case, catalog_entry: Entry, conformance_run: Run) -> None:
    problem = catalog_entry.problem(case.dtype_name)
    unmet = case.impl.outside_domain(problem)
    if unmet:
        pytest.skip(f"{catalog_entry.id} is outside {case.impl.name}'s declared domain ({', '.join(unmet)})")
    too_large = fits(problem, case.device, gradients=False)
    if too_large:
        pytest.skip(f"{catalog_entry.id} {too_large}")
    evaluation, finding = run_on(case, problem, MODEL_SIZE)
    conclude(conformance_run, case, evaluation.problem, MODEL_SIZE, finding)
