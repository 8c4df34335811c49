"""Regression reports: what changed between two runs (two torch versions, last night and today).

A discrepancy is identified by implementation, device, dtype and check. The minimized problem may
differ between runs of a changed kernel, so it is shown but not part of the identity.
"""

from __future__ import annotations

from typing import Any

Key = tuple[str, str, str, str]


def _key(record: dict[str, Any]) -> Key:
    return (record["impl"], record["device"], record["dtype"], record["check"])


def _worst(record: dict[str, Any]) -> float | None:
    value = (record.get("details") or {}).get("error/allowance")
    return float(value) if isinstance(value, (int, float)) else None


def _unexpected(report: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    return {_key(r): r for r in report["discrepancies"] if r.get("status", "unexpected") == "unexpected"}


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list]:
    """New, fixed and persisting unexpected discrepancies, and persisting ones whose worst error
    changed by more than a factor of two."""
    before, after = _unexpected(old), _unexpected(new)
    persisting = sorted(set(before) & set(after))
    changed = []
    for key in persisting:
        a, b = _worst(before[key]), _worst(after[key])
        if a and b and (b / a > 2 or a / b > 2):
            changed.append((key, a, b))
    return {"new": [after[k] for k in sorted(set(after) - set(before))],
            "fixed": [before[k] for k in sorted(set(before) - set(after))],
            "persisting": [after[k] for k in persisting], "changed": changed}


def markdown(changes: dict[str, list], old_name: str, new_name: str) -> str:
    def row(record: dict[str, Any]) -> str:
        return (f"| {record['impl']} | {record['device']} | {record['dtype']} | {record['check']} | "
                f"{record.get('summary', '')} | `{record.get('descriptor', '')}` |")

    header = "| implementation | device | dtype | check | summary | problem |\n|---|---|---|---|---|---|"
    lines = [f"# Regression report: {old_name} -> {new_name}", "",
             f"{len(changes['new'])} new, {len(changes['fixed'])} fixed, {len(changes['persisting'])} persisting.", ""]
    for title, name in (("New", "new"), ("Fixed", "fixed"), ("Persisting", "persisting")):
        if changes[name]:
            lines += [f"## {title}", "", header] + [row(r) for r in changes[name]] + [""]
    if changes["changed"]:
        lines += ["## Changed error magnitude (worst error / allowance)", "",
                  "| implementation | device | dtype | check | before | after |", "|---|---|---|---|---:|---:|"]
        lines += [f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {a:.3g} | {b:.3g} |" for k, a, b in changes["changed"]]
    new_repros = [r["repro"] for r in changes["new"]]
    if new_repros:
        lines += ["", "## Reproduce the new ones", "", "```"] + new_repros + ["```"]
    return "\n".join(lines).rstrip() + "\n"
