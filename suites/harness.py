"""The glue between the checks and pytest/Hypothesis: the case under test, the lazily computed
quantities of a problem, and concluding a check (pass, known discrepancy, or failure with a record)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from hypothesis import event, note
from hypothesis.control import current_build_context

from impls import Implementation, spec
from impls.naive import explain, reference
from reports import expectations
from reports.records import RecordWriter, Summary, write_json

from . import campaign, oracles
from .problem import Problem, Tensors, magnitude, term_count
from .strategies import regions_of


class Discrepancy(AssertionError):
    """An implementation departs from the contract; the message says where and how."""


@dataclass(frozen=True)
class Case:
    """One implementation on one device in one dtype: what a parametrized test checks."""

    impl: Implementation
    device: str
    dtype_name: str

    @property
    def dtype(self) -> torch.dtype:
        return spec.DTYPES[self.dtype_name]

    @property
    def id(self) -> str:
        return f"{self.impl.name}-{self.device}-{self.dtype_name}"

    def __repr__(self) -> str:
        return f"Case({self.id!r})"

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # Hypothesis' failure printout
        printer.text(repr(self))

    @property
    def precision(self) -> oracles.Precision:
        """What the implementation declares about its arithmetic in this dtype on this device."""
        accumulation = self.impl.accumulation.get(self.dtype_name)
        products = self.impl.products.get(self.dtype_name)
        return oracles.precision_of(self.dtype, tf32=self.impl.uses_tf32(self.device),
                                    accumulation=spec.DTYPES[accumulation] if accumulation else None,
                                    products=spec.DTYPES[products] if products else None,
                                    algorithm=self.impl.algorithm_for(self.dtype_name))


@dataclass
class Run:
    """What this process knows about the run: counts, rules, where records go, how to reproduce."""

    tally: Summary
    rules: list[expectations.Rule]
    writer: RecordWriter | None = None
    corpus_dir: str | None = None
    plugin_modules: tuple[str, ...] = ()
    environment: dict[str, Any] | None = None
    progress_path: Any = None  # where a campaign's live counts go (read by the progress line)
    progress_written: float = 0.0


RUN = Run(Summary(), [])
_known_recorded: set[tuple[str, str, str]] = set()


def _in_hypothesis() -> bool:
    try:
        current_build_context()
        return True
    except Exception:  # noqa: BLE001  (no Hypothesis context: a corpus replay or repro)
        return False


def _event(text: str) -> None:
    if _in_hypothesis():
        event(text)


def label(problem: Problem, check: str) -> None:
    """Label a valid problem's classes for Hypothesis' statistics and count, per check, the
    bug-prone regions it was evaluated in (after the check ran, so a redrawn problem never counts)."""
    _event(f"dims={problem.dims}")
    _event(f"layout={problem.layout}")
    for region in regions_of(problem):
        _event(f"region: {region}")
        RUN.tally.count("regions", region)
        RUN.tally.count("evaluated", f"{check}: {region}")


def facts_of(problem: Problem) -> dict[str, Any]:
    """What expectation rules may key on: the problem's fields plus derived facets."""
    facts = problem.to_dict()
    facts["regions"] = regions_of(problem) if problem.broken_rule is None else []
    if problem.values == "special":
        facts["nonfinite_in"] = [name for name, t in zip(("input", "weight", "bias"), problem.tensors())
                                 if t is not None and not torch.isfinite(t).all()]
    return facts


def _is_final_example() -> bool:
    """True outside Hypothesis (a replay) or on its final run of the minimal failing example."""
    return current_build_context().is_final if _in_hypothesis() else True


def conclude(case: Case, problem: Problem, check: str, finding: oracles.Finding | None) -> None:
    """Count the example; a finding either matches a known-discrepancy rule (counted as known, not
    failed, not shrunk) or fails the example with a message a person can act on, and a record."""
    __tracebackhide__ = True
    _write_progress()
    final = _is_final_example()
    if finding is None or final:
        RUN.tally.count("examples", (case.impl.name, check))  # shrinking steps of a failure do not count
    if finding is None:
        return
    key = (case.impl.name, finding.check)
    rule = expectations.match(RUN.rules, case.impl.name, finding.check, case.device, case.dtype_name,
                              facts_of(problem))
    if rule is not None:
        RUN.tally.count("known", key)
        RUN.tally.count("rules_matched", rule.id)
        _event(f"known discrepancy: {rule.id}")
        if (case.id, finding.check, rule.id) not in _known_recorded:  # the first one, as an example
            _known_recorded.add((case.id, finding.check, rule.id))
            _record(case, problem, check, finding, status="known", rule=rule)
        return
    if not final:
        campaign.note_failure(case, problem, check, finding)
        raise Discrepancy(f"{case.id}: {finding.summary}")  # a step of shrinking; the final run reports
    RUN.tally.count("failed", key)
    if _in_hypothesis():
        note(f"problem: {problem.describe()}")
    _record(case, problem, check, finding, status="unexpected")
    raise Discrepancy(f"{case.id}: {finding.render()}\n  problem: {problem.describe()}\n"
                      f"  reproduce: {repro_command(case, problem, check)}")


def _write_progress(every: float = 2.0) -> None:
    """A campaign's live counts, for the progress line (at most every ``every`` seconds)."""
    if campaign.BUDGET is None or RUN.progress_path is None or time.time() - RUN.progress_written < every:
        return
    RUN.progress_written = time.time()
    write_json(RUN.progress_path, RUN.tally.to_tally())


def record_unminimized(case: Case, problem: Problem, check: str, finding: oracles.Finding) -> None:
    """Keep a failure whose shrinking the campaign clock cut short."""
    finding.summary = f"(not minimized: the campaign's time ran out) {finding.summary}"
    RUN.tally.count("failed", (case.impl.name, finding.check))
    _record(case, problem, check, finding, status="unexpected")


def repro_command(case: Case, problem: Problem, check: str) -> str:
    """One line that reruns this check on this problem and prints the explanation."""
    modules = "".join(f" --impl-module {m}" for m in RUN.plugin_modules)
    return (f"python -m suites repro --impl {case.impl.name} --device {case.device} --check {check}"
            f"{modules} --problem '{problem.to_json()}'")


def _record(case: Case, problem: Problem, check: str, finding: oracles.Finding, status: str,
            rule: expectations.Rule | None = None) -> None:
    record = {
        "impl": case.impl.name, "device": case.device, "dtype": case.dtype_name, "check": finding.check,
        "ran_check": check,
        "status": status, "summary": finding.summary, "details": finding.details,
        "picture": finding.picture, "problem": problem.to_dict(), "descriptor": problem.describe(),
        "repro": repro_command(case, problem, check),  # the check that ran: a crash has none of its own
        "script": standalone_script(case, problem, check, RUN.plugin_modules),
        "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0],
        "plugin_modules": list(RUN.plugin_modules),
        "environment": RUN.environment or {},
    }
    if rule is not None:
        record["rule"] = {"id": rule.id, "reason": rule.reason, "link": rule.link}
    if RUN.writer is not None:
        RUN.writer.write(record)
    if RUN.corpus_dir and status == "unexpected":  # replayed by the check that ran (a crash has no check of its own)
        save_to_corpus(RUN.corpus_dir, case, problem, check)


def save_to_corpus(directory: str, case: Case, problem: Problem, check: str) -> None:
    """Keep a minimized failing problem so later runs replay it first (and a fixed bug stays fixed)."""
    entry = {"problem": problem.to_dict(), "checks": [check], "found_by": case.id,
             "note": f"found by {case.id}: {check}"}
    text = json.dumps(entry, indent=1, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{check}-{case.impl.name}-{digest}.json")
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


def standalone_script(case: Case, problem: Problem, check: str, plugin_modules: tuple[str, ...]) -> str:
    """A plain Python script that rebuilds the inputs and prints reference and implementation side
    by side (run it from the repository root)."""
    return f'''"""Reproduce: {case.id} {check} on {problem.describe()}"""
import sys, torch
sys.path.insert(0, ".")
import impls
from impls.naive import reference
from suites.problem import Problem

for module in {list(plugin_modules)!r}:
    impls.load_plugin(module)
problem = Problem.from_dict({problem.to_dict()!r})
x, w, b = problem.materialize({case.device!r})  # the exact tensors the gate passed, layout included
print("problem:", problem.describe())
expected = reference(*problem.tensors(), **problem.kwargs())
try:
    got = impls.get({case.impl.name!r}).fn(x, w, b, **problem.kwargs())
except Exception as exc:
    print("implementation raised:", type(exc).__name__, exc)
    sys.exit(1)
print("reference shape", tuple(expected.shape), "| implementation shape", tuple(got.shape), got.dtype)
if got.shape == expected.shape:
    got64 = got.detach().cpu().to(expected.dtype)
    difference = (got64 - expected).abs()
    order = torch.argsort(torch.nan_to_num(difference.flatten(), nan=float("inf")), descending=True)
    print(f"{{'index':>20}} {{'reference':>24}} {{'implementation':>24}} {{'difference':>12}}")
    for flat in order[:10].tolist():
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), expected.shape))
        print(f"{{str(list(index)):>20}} {{str(expected[index].item()):>24}} {{str(got64[index].item()):>24}} "
              f"{{difference[index].item():12.4g}}")
'''


@dataclass
class Evaluation:
    """A valid problem prepared for value checks: tensors and the float64 quantities behind the
    allowances, computed on demand."""

    case: Case
    problem: Problem

    @cached_property
    def values(self) -> Tensors:
        return self.problem.tensors()

    @cached_property
    def given(self) -> Tensors:
        return self.problem.materialize(self.case.device)

    @cached_property
    def geometry(self) -> spec.Geometry:
        return self.problem.geometry()

    @cached_property
    def y_ref(self) -> torch.Tensor:
        return reference(*self.values, **self.problem.kwargs())

    @cached_property
    def y_ref_without_bias(self) -> torch.Tensor | None:
        """The reference before the bias is added (None without a bias)."""
        x, w, b = self.values
        return None if b is None else reference(x, w, None, **self.problem.kwargs())

    @cached_property
    def M(self) -> torch.Tensor:
        return magnitude(self.values, self.problem)

    @cached_property
    def K(self) -> torch.Tensor:
        return term_count(self.values, self.problem)

    @cached_property
    def reached(self) -> torch.Tensor:
        """The outputs some product lands in (the others are structural zeros, or the bias)."""
        return self.K > (0 if self.values.bias is None else 1)  # K counts the bias as a term

    @cached_property
    def error_model(self) -> oracles.ErrorModel:
        """The allowances of the implementation's declared algorithm and precision."""
        prec = self.case.precision
        if not prec.transform:
            allowed = oracles.allowance(self.M, self.K, self.y_ref, prec, self.y_ref_without_bias)
            return oracles.DirectModel(allowed, self.M, self.K, self.case.dtype)
        x, w, _ = self.values
        x64 = oracles.widen(x if self.problem.batched else x.unsqueeze(0))
        planes = oracles.transform_plane_allowance(
            x64, oracles.widen(w), self.problem.groups, oracles.transform_log2_size(self.geometry.full_size()),
            self.y_ref, prec, self.y_ref_without_bias)
        return oracles.TransformModel(planes, self.problem.dims, self.M, self.K, self.case.dtype)

    def vacuous_reason(self) -> str | None:
        x, w, _ = self.values
        return oracles.vacuous_reason(self.y_ref, self.reached, x, w)

    def explanation(self, index: list[int], limit: int = 12) -> str:
        """The definition's terms for one output element, as text (at most ``limit`` lines)."""
        text = explain(*self.values, index, **self.problem.kwargs()).table().splitlines()
        shown = list(itertools.islice(text, limit + 1))
        if len(text) > limit + 1:
            shown.append(f"  ... {len(text) - limit - 1} more")
        return "\n".join(shown)
