"""``convt repro``: rerun one check on one problem and show the explanation; ``convt fuzz``: a campaign.

    convt repro --impl NAME --device cpu --check bound --problem '{...}' [--impl-module M]
    convt repro --record convt-reports/report.json [--index 1]

Plugins and third-party frameworks run in a worker process, as in the gate, so a crash or a hang
reproduces as a finding (``--contain``/``--no-contain`` choose).

Exit status: 1 when the discrepancy reproduces, 0 when it does not, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from convt_conformance import impls
from convt_conformance.reports.records import read_report

from . import all_checks  # every check registered (gradients, modules, model sizes), read at call time
from .case import Case
from .catalog import macs
from .checks import CALL_FINDINGS, Untrusted, call, check_for, run_on
from .containment import DEFAULT_CALL_TIMEOUT, ContainedCall, contained, trusted_in_process
from .evidence import EXACT_REPLAY_WORK
from .problem import Problem


class UsageProblem(ValueError):
    """Bad input on the command line or in a record; the message is one line."""


def _problem(text: str, where: str) -> Problem:
    try:
        data = json.loads(text) if isinstance(text, str) else text
        return Problem.from_dict(data)
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise UsageProblem(f"{where}: not a problem ({exc})") from None


def _from_record(path: str, index: int) -> tuple[str, str, str, str, Problem, list[str]]:
    report = read_report(path)
    found = report["discrepancies"]
    if not 1 <= index <= len(found):
        raise UsageProblem(f"{path}: --index {index} is not one of its discrepancies, which are numbered from 1 to "
                           f"{len(found)} in the file's order (report.md shows each cause's --index)")
    record = found[index - 1]
    problem = _problem(record["problem"], f"{path} discrepancy {index}")
    ran = record.get("ran_check") or _check_that_calls(record["check"], problem)
    return (record["impl"], record["device"], record["dtype"], ran, problem, list(record.get("plugin_modules", [])))


def _check_that_calls(kind: str, problem: Problem) -> str:
    """For a record without ``ran_check`` (older reports): a crash, hang or refusal is rerun by the
    check that calls the implementation on that kind of problem."""
    if kind not in CALL_FINDINGS:
        return kind
    return "invalid-accepted" if problem.broken_rule else "valid-refused"


def repro(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="convt repro", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", help="a report.json to take the discrepancy from")
    parser.add_argument("--index", type=int, default=1,
                        help="which discrepancy of --record, numbered from 1 in report.json's order (report.md and "
                             "report.html print each cause's own --index)")
    parser.add_argument("--impl")
    parser.add_argument("--device", default="cpu")
    kinds = sorted({kind for check in all_checks.CHECKS.values() for kind in check.kinds} | set(CALL_FINDINGS))
    parser.add_argument("--check", choices=kinds,
                        help="a check, or a kind of finding one reports (statistical: the bound check)")
    parser.add_argument("--problem", help="the problem as JSON (as the record's repro line gives it)")
    parser.add_argument("--impl-module", action="append", default=[])
    parser.add_argument("--contain", action=argparse.BooleanOptionalAction, default=None,
                        help="run the implementation in a worker process, so that a crash or a hang is reported "
                             "(default: for plugins and third-party frameworks, as in the gate)")
    parser.add_argument("--call-timeout", type=float, default=DEFAULT_CALL_TIMEOUT, metavar="SECONDS")
    args = parser.parse_args(argv)
    if args.record:
        name, device, dtype, check, problem, modules = _from_record(args.record, args.index)
    else:
        if not (args.impl and args.check and args.problem):
            raise UsageProblem("give --record, or all of --impl, --check and --problem")
        name, device, check, modules = args.impl, args.device, args.check, []
        problem = _problem(args.problem, "--problem")
        dtype = problem.dtype
    modules = list(dict.fromkeys(modules + args.impl_module))
    for module in modules:
        impls.load_plugin(module)
    impl = impls.get(name)
    if args.contain if args.contain is not None else not trusted_in_process(impl):
        impl = contained(impl, modules, args.call_timeout)
    case = Case(impl, device, dtype)
    try:
        check = check_for(_check_that_calls(check, problem)).name
    except KeyError:
        raise UsageProblem(f"no check reports {check!r} findings; checks: {', '.join(all_checks.CHECKS)}") from None
    print(f"{case.id} {check}: {problem.describe()}")
    try:
        try:
            evaluation, finding = run_on(case, problem, check)
        except Untrusted as untrusted:
            print(f"not evidence: {untrusted}")
            return 0
        if finding is None:
            print("not reproduced: the check passes")
            return 0
        print(f"reproduced: {finding.render()}")
        if macs(evaluation.problem) <= EXACT_REPLAY_WORK:  # the whole definition of a model-size problem is too large
            show_data(evaluation)
            show_worst(evaluation, finding)
        return 1
    finally:
        if isinstance(case.impl.fn, ContainedCall):
            case.impl.fn.close()


def show_worst(evaluation, finding, reach: int = 2) -> None:
    """Expected and actual values along the last axis around the worst element (``reach`` either side)."""
    index = finding.details.get("index", finding.details.get("first wrong element"))
    if not isinstance(index, list) or not index:
        return
    try:
        got, expected = call(evaluation).detach().cpu().to(torch.float64), evaluation.y_ref
    except Exception:  # noqa: BLE001  (a crash or a refusal has no values to show)
        return
    if got.shape != expected.shape or len(index) != got.dim():
        return
    lead, at = tuple(index[:-1]), index[-1]
    low, high = max(at - reach, 0), min(at + reach + 1, got.shape[-1])
    print(f"around the worst element, output[{', '.join(map(str, lead + (f'{low}:{high}',)))}]:")
    for name, values in (("expected", expected), ("got", got)):
        print(f"  {name:8} " + "  ".join(f"{v:.6g}" for v in values[lead][low:high].tolist()))


SHOWN_ELEMENTS = 64  # a tensor this small is printed in full by repro


def show_data(evaluation) -> None:
    """The problem's values, for a small problem: the input, weight and bias (with where they are not finite),
    and the output the definition gives, so nobody rebuilds them by hand."""
    tensors = dict(zip(("input", "weight", "bias"), evaluation.values))
    try:
        tensors["expected output (the definition)"] = evaluation.y_ref
    except Exception:  # noqa: BLE001  (an invalid problem has no output)
        pass
    for name, values in tensors.items():
        if values is None:
            continue
        if values.numel() > SHOWN_ELEMENTS:
            print(f"{name}: shape {tuple(values.shape)}, {values.numel()} elements (too many to print)")
            continue
        print(f"{name}, shape {tuple(values.shape)}:\n{values}")
        if values.is_floating_point() or values.is_complex():
            special = (~torch.isfinite(values)).nonzero().tolist()
            if special:
                print(f"  not finite at {special}")


def fuzz(argv: list[str]) -> int:
    """A fuzz campaign: the suites on every core, fresh random seeds, for a wall-clock budget."""
    import random
    import subprocess

    parser = argparse.ArgumentParser(prog="convt fuzz", description=fuzz.__doc__,
                                     epilog="Further arguments go to pytest (e.g. --impl NAME, --shard 1/4).")
    parser.add_argument("--seconds", type=float, required=True, help="the wall-clock budget")
    parser.add_argument("--workers", default="auto", help="pytest-xdist workers (default: every core)")
    args, rest = parser.parse_known_args(argv)
    if args.seconds <= 0:
        raise UsageProblem(f"--seconds {args.seconds:g}: the budget must be positive")
    command = [sys.executable, "-m", "convt_conformance", "gate", "-q", "-p", "no:cacheprovider", "-n", args.workers,
               "--fuzz-seconds", str(args.seconds), "--hypothesis-seed", str(random.randrange(2**32)), *rest]
    print("$", " ".join(command), flush=True)
    return subprocess.call(command)
