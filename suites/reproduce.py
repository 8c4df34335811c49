"""How a person reruns a finding: a one-line ``convt repro`` command and a standalone script."""

from __future__ import annotations

from .case import Case
from .problem import Problem


def repro_command(case: Case, problem: Problem, check: str, plugin_modules: tuple[str, ...] = ()) -> str:
    """One line that reruns this check on this problem and prints the explanation."""
    modules = "".join(f" --impl-module {m}" for m in plugin_modules)
    return (f"convt repro --impl {case.impl.name} --device {case.device} --check {check}"
            f"{modules} --problem '{problem.to_json()}'")


def standalone_script(case: Case, problem: Problem, check: str, plugin_modules: tuple[str, ...]) -> str:
    """A plain Python script that rebuilds the inputs and prints reference and implementation side
    by side (run it where the gate ran: plugin file paths are relative to it)."""
    return f'''"""Reproduce: {case.id} {check} on {problem.describe()}"""
import sys, torch
sys.path.insert(0, ".")
from convt_conformance import impls
from convt_conformance.reference import reference
from convt_conformance.suites.problem import Problem

for module in {list(plugin_modules)!r}:
    impls.load_plugin(module)
problem = Problem.from_dict({problem.to_dict()!r})
x, w, b = problem.materialize({case.device!r})  # the exact tensors the gate passed, layout included
print("problem:", problem.describe())
try:
    expected = reference(*problem.tensors(), **problem.kwargs())
except ValueError as exc:  # an invalid problem: the definition refuses it, so must the implementation
    expected = None
    print("the definition refuses this problem:", exc)
try:
    got = impls.get({case.impl.name!r}).fn(x, w, b, **problem.kwargs())
except Exception as exc:
    print("implementation raised:", type(exc).__name__, exc)
    sys.exit(0 if expected is None else 1)
if expected is None:
    print("implementation accepted it and returned shape", tuple(got.shape), got.dtype)
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
