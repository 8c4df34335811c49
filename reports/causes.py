"""Discrepancies grouped into causes: one defect reads as one cause, however many problems, dtypes, dims,
layouts and checks met it; two defects of one implementation stay two.

What a defect is comes from what was found, never from how it was met:

- a known discrepancy is its rule;
- a wrong shape, dtype or device; a crash (by its signal or exit status); a hang; an invalid problem
  accepted (by the validity rule it breaks, garbage returned or not); wrong gradients (by which ones);
  special values (what came back where the definition gives what); a refusal (by its error);
- wrong values by the evidence the harness took when it recorded them (``evidence``): replayed through
  the exact check, the problem is wrong even on small integers (the wrong terms are summed), wrong only in
  its own memory layout, or right on integers (only the rounding is off). NaN or Inf returned for finite
  values is a defect of its own.

Each cause keeps the facets it was met in (checks, kinds, dtypes, dims, layouts, value kinds), its count,
its severity (the worst of its findings) and its smallest example, whose real numbers make its title.
Works on plain record dicts only.
"""

from __future__ import annotations

import math
import re
from typing import Any

# The kinds of finding by how much harm they do a user.
SEVERE = ("crash", "timeout", "invalid-garbage")
DOMAIN = ("valid-refused", "invalid-accepted", "output-size-refused", "backward-refused")
SEVERITIES = ("severe", "wrong", "domain")
VALUE_FINDINGS = ("exact", "bound", "statistical", "adjoint", "layout", "model-size")  # and special-values
GRADIENT_FINDINGS = ("grad-exact", "grad-bound", "double-backward", "model-size-gradients", "model-size-adjoint")
EVIDENCE = {
    "integer": "wrong values even on small integers, where every sum is exact",
    "layout": "wrong values in a non-contiguous layout, right when contiguous",
    "rounding": "rounding error past the allowance, right on small integers",
    "transform": "values past the allowance of a transform algorithm",
}
_EMPTY_OUTPUT = re.compile(r"output size .*(not positive|non-?positive|negative)|negative dimension", re.IGNORECASE)
KIND_WORDS = {"valid-refused": "valid problems refused", "backward-refused": "valid problems not differentiated",
              "output-size": "output_size turned into the wrong output length",
              "inputs-unmodified": "inputs written to", "grad-inputs-modified": "inputs written to by the backward",
              "module-parameters": "module parameters of the wrong shape", "outside-domain": "declared domain broken"}
_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?")
_DTYPE = re.compile(r"\b(torch\.)?(bfloat16|float16|float32|float64|complex64|complex128|half|float|double)\b")
_PREFIX = re.compile(r"^\((did not fail again|not minimized)[^)]*\)\s*")


def severity(kind: str) -> str:
    """``severe`` (the process died or hung, or garbage came back), ``domain`` (a refusal or an
    acceptance that differs from PyTorch's rules) or ``wrong`` (a result that breaks the contract)."""
    if kind in SEVERE:
        return "severe"
    return "domain" if kind in DOMAIN else "wrong"


def masked(summary: str) -> str:
    """A message with its numbers and dtypes masked and runs of masked numbers as one (a tuple's rank
    is no part of a defect), the prefixes a campaign adds removed. Only for telling causes apart: what a
    person reads keeps the numbers."""
    text = _PREFIX.sub("", summary or "")
    # numbers inside quotes are names (a broken rule, a requirement): kept
    text = "'".join(part if inside % 2 else _NUMBER.sub("#", _DTYPE.sub("<dtype>", part))
                    for inside, part in enumerate(text.split("'")))
    return re.sub(r"#(, #)+,?", "#", text)


def defect(record: dict[str, Any]) -> tuple[tuple, str]:
    """What is wrong, as a key (equal for findings of one defect) and in words."""
    kind, facets = record.get("check", ""), record.get("facets") or {}
    rule = (record.get("rule") or {}).get("id")
    if rule:
        return ("rule", rule), f"known discrepancy {rule}"
    summary = _PREFIX.sub("", record.get("summary") or "")
    if kind == "shape" or (kind == "valid-refused" and _EMPTY_OUTPUT.search(summary)):
        # a valid problem refused because the output would be empty or negative: its size is computed wrong
        what = "shape" if kind == "valid-refused" else summary.split(" ", 1)[0] or "shape"
        return ("shape", what), f"wrong output {what}"
    if kind in ("invalid-accepted", "invalid-garbage"):
        broken = (record.get("problem") or {}).get("broken_rule")
        return ("accepts", broken), "invalid problems accepted"
    if kind == "crash":
        exit_ = facets.get("exit")
        return ("crash", exit_), f"the process dies{f' ({exit_})' if exit_ else ''}"
    if kind == "timeout":
        return ("hang",), "the call hangs"
    evidence = record.get("evidence")
    if kind in ("determinism", "grad-determinism") or evidence == "nondeterministic":
        which = "gradients" if kind.startswith("grad") else "results"
        return ("nondeterministic", which), f"{which} differ between identical calls"
    if evidence == "layout":
        return ("values", evidence), EVIDENCE[evidence]
    nonfinite = tuple(sorted(set(facets.get("got") or ()) - {"finite", "zero"}))
    if kind in VALUE_FINDINGS and nonfinite:  # NaN or Inf for finite values (an overflow, a 0/0): its own defect
        return ("values", "nonfinite", nonfinite), f"{'/'.join(nonfinite)} returned for finite values"
    if kind in (*VALUE_FINDINGS, "special-values") and evidence in EVIDENCE:
        return ("values", evidence), EVIDENCE[evidence]
    if kind in VALUE_FINDINGS:
        return ("values", kind), f"wrong values ({kind} check)"
    if kind == "special-values":  # what came back that the definition does not give, whatever it gives
        got = tuple(sorted(set(facets.get("got") or ()) - {"finite", "zero"})) or tuple(facets.get("got") or ())
        return ("special", got), f"{'/'.join(got) or 'wrong values'} where the definition gives other values"
    if kind in ("output-size", "output-size-refused"):  # sizes refused or answered wrongly: one computation
        return ("output-size",), KIND_WORDS["output-size"]
    if kind in GRADIENT_FINDINGS:
        wrong = tuple(facets.get("gradients") or ())
        which = "second derivatives" if kind == "double-backward" else "gradients"
        return ("gradients", which, wrong), f"wrong {which}{': ' + ', '.join(wrong) if wrong else ''}"
    return (kind, masked(summary)), KIND_WORDS.get(kind, kind.replace("-", " "))


def _size(record: dict[str, Any]) -> int:
    problem = record.get("problem") or {}
    return sum(math.prod(problem.get(key) or (0,)) for key in ("input_shape", "weight_shape"))


def _rank(record: dict[str, Any]) -> tuple:
    """How well a record shows its cause, best first: an output to look at (not an empty batch), fewer
    elements, contiguous, integer values (exact numbers read best), a plain (not a campaign's cut) finding."""
    problem = record.get("problem") or {}
    empty = 0 in (problem.get("input_shape") or [0])
    return (empty, _size(record), problem.get("layout", "contiguous") != "contiguous",
            problem.get("value_kind") != "int", bool(_PREFIX.match(record.get("summary") or "")))


def _last_output(record: dict[str, Any]) -> str:
    """The last line a dead or hung worker printed (why a native library exits), for the cause's title."""
    lines = str((record.get("details") or {}).get("worker output") or "").strip().splitlines()
    return f"; its last output: {lines[-1].strip()}" if lines else ""


def _dims(record: dict[str, Any]) -> int | None:
    shape = (record.get("problem") or {}).get("weight_shape")
    return len(shape) - 2 if shape else None


FACETS = {"checks": lambda r: r.get("ran_check") or r.get("check"), "kinds": lambda r: r.get("check"),
          "dtypes": lambda r: r.get("dtype"), "dims": _dims,
          "layouts": lambda r: (r.get("problem") or {}).get("layout", "contiguous"),
          "value_kinds": lambda r: (r.get("problem") or {}).get("value_kind")}


def group(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The causes of ``records``, unexpected first, severe first, then by count. Each holds ``impl``,
    ``device``, ``status``, ``severity``, ``defect`` (in words), ``title`` (one line with the example's real
    numbers), ``count``, the :data:`FACETS` it was met in, ``rule`` and ``example``: the index of its
    smallest problem in ``records`` (``problem``: that problem in short)."""
    causes: dict[tuple, dict[str, Any]] = {}
    for index, record in enumerate(records):
        status = record.get("status", "unexpected")
        key, words = defect(record)
        key = (status, record.get("impl"), record.get("device"), key)
        cause = causes.get(key)
        if cause is None:
            cause = causes[key] = {"status": status, "impl": record.get("impl"), "device": record.get("device"),
                                   "defect": words, "rule": (record.get("rule") or {}).get("id"),
                                   "severity": severity(record.get("check", "")), "count": 0, "example": index,
                                   **{name: [] for name in FACETS}}
        cause["count"] += 1
        for name, facet in FACETS.items():
            value = facet(record)
            if value is not None and value not in cause[name]:
                cause[name].append(value)
        graded = severity(record.get("check", ""))
        if SEVERITIES.index(graded) < SEVERITIES.index(cause["severity"]):
            cause["severity"] = graded
        if _rank(record) < _rank(records[cause["example"]]):
            cause["example"] = index
    for cause in causes.values():
        example = records[cause["example"]]
        cause["problem"] = example.get("descriptor", "")
        # the evidence adds what the message cannot say; other messages say what is wrong themselves
        lead = f"{cause['defect']}: " if example.get("evidence") else ""
        cause["title"] = f"{lead}{example.get('summary', '')}{_last_output(example)}"
        cause["dims"].sort()
    return sorted(causes.values(), key=lambda c: (c["status"] != "unexpected", SEVERITIES.index(c["severity"]),
                                                  -c["count"]))
