"""Discrepancies grouped into causes: one bug found on many problems, dtypes or checks reads as one row.

A cause is keyed on the implementation, the device, the check that ran, the kind of finding, the
problem's signature (dims, the rule it breaks, the kind of values, the layout) and the message with its
numbers masked. Each cause keeps its count, the dtypes it was met in, and one example: the smallest
problem (the most minimized). Severity comes with the kind: a crash, a hang or garbage returned for an
invalid problem is severe whatever the rest. Works on plain record dicts only.
"""

from __future__ import annotations

import math
import re
from typing import Any

# The kinds of finding by how much harm they do a user.
SEVERE = ("crash", "timeout", "invalid-garbage")
DOMAIN = ("valid-refused", "invalid-accepted", "output-size-refused", "backward-refused")
_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?")
_DTYPE = re.compile(r"\b(torch\.)?(bfloat16|float16|float32|float64|complex64|complex128|half|float|double)\b")


def severity(kind: str) -> str:
    """``severe`` (the process died or hung, or garbage came back), ``domain`` (a refusal or an
    acceptance that differs from PyTorch's rules) or ``wrong`` (a result that breaks the contract)."""
    if kind in SEVERE:
        return "severe"
    return "domain" if kind in DOMAIN else "wrong"


def problem_signature(problem: dict[str, Any]) -> str:
    """What the problems of one cause share: dims, the broken rule, the kind of values, the layout."""
    dims = len(problem.get("weight_shape", ())) - 2
    parts = [f"{dims}d" if dims > 0 else "?d"]
    if problem.get("broken_rule"):
        parts.append(f"breaks {problem['broken_rule']!r}")
    parts.append(f"{problem.get('value_kind', 'real')} values")
    if problem.get("layout", "contiguous") != "contiguous":
        parts.append(str(problem["layout"]))
    return ", ".join(parts)


def message_signature(summary: str) -> str:
    """The message with its numbers and dtypes masked (one cause shows in several dtypes), and the
    prefixes a campaign adds removed."""
    text = re.sub(r"^\((did not fail again|not minimized)[^)]*\)\s*", "", summary or "")
    # numbers inside quotes are names (a broken rule, a requirement): kept
    return "'".join(part if inside % 2 else _NUMBER.sub("#", _DTYPE.sub("<dtype>", part))
                    for inside, part in enumerate(text.split("'")))


def _size(record: dict[str, Any]) -> int:
    problem = record.get("problem") or {}
    return sum(math.prod(problem.get(key) or (0,)) for key in ("input_shape", "weight_shape"))


def group(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The causes of ``records`` (each with ``count``, ``dtypes``, ``severity``, ``example``: the index of
    its smallest problem in ``records``), unexpected first, severe first, then by count."""
    causes: dict[tuple, dict[str, Any]] = {}
    for index, record in enumerate(records):
        status = record.get("status", "unexpected")
        rule = (record.get("rule") or {}).get("id")
        key = (status, record.get("impl"), record.get("device"), record.get("ran_check") or record.get("check"),
               record.get("check"), problem_signature(record.get("problem") or {}),
               message_signature(record.get("summary", "")), rule)
        cause = causes.get(key)
        if cause is None:
            cause = causes[key] = {"status": status, "impl": record.get("impl"), "device": record.get("device"),
                                   "check": record.get("check"), "ran_check": key[3], "signature": key[5],
                                   "message": key[6], "rule": rule, "severity": severity(record.get("check", "")),
                                   "count": 0, "dtypes": [], "example": index}
        cause["count"] += 1
        if record.get("dtype") not in cause["dtypes"]:
            cause["dtypes"].append(record.get("dtype"))
        if _size(record) < _size(records[cause["example"]]):
            cause["example"] = index
    order = {"severe": 0, "wrong": 1, "domain": 2}
    return sorted(causes.values(), key=lambda c: (c["status"] != "unexpected", order[c["severity"]], -c["count"]))
