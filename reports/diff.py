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
            "persisting": [after[k] for k in persisting], "changed": changed, "known": known_changes(old, new)}


def _matched(report: dict[str, Any]) -> dict[str, int]:
    """Known discrepancies per rule: how many examples each rule excused in a run."""
    summary = report.get("summary") or {}
    counts = dict(summary.get("rules_matched") or {})
    for record in report["discrepancies"]:  # a merged report without a tally still names its rules
        rule = (record.get("rule") or {}).get("id")
        if record.get("status") == "known" and rule:
            counts.setdefault(rule, 1)
    return {rule: n for rule, n in counts.items() if n}


def known_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list]:
    """Known discrepancies by rule: rules that matched only in the new run, only in the old one, in both
    (with their counts), and rules the new run reports as matching nothing that the old one did not."""
    before, after = _matched(old), _matched(new)
    stale_before = {r["id"] for r in (old.get("summary") or {}).get("stale_rules", [])}
    stale_after = {r["id"]: r for r in (new.get("summary") or {}).get("stale_rules", [])}
    return {"new": [(rule, after[rule]) for rule in sorted(set(after) - set(before))],
            "gone": [(rule, before[rule]) for rule in sorted(set(before) - set(after))],
            "persisting": [(rule, before[rule], after[rule]) for rule in sorted(set(before) & set(after))],
            "stale": [(rule, stale_after[rule].get("status", "fixed"))
                      for rule in sorted(set(stale_after) - stale_before)]}


def _known_lines(known: dict[str, list]) -> list[str]:
    """The known discrepancies by rule, as Markdown sections."""
    lines = []
    if known.get("persisting"):
        lines += ["", "## Known discrepancies, persisting (examples matched: before, after)", "",
                  "| rule | before | after |", "|---|---:|---:|"]
        lines += [f"| `{rule}` | {a} | {b} |" for rule, a, b in known["persisting"]]
    for title, name in (("newly matched", "new"), ("no longer matched", "gone")):
        if known.get(name):
            lines += ["", f"## Known discrepancies, {title}", "", "| rule | examples matched |", "|---|---:|"]
            lines += [f"| `{rule}` | {n} |" for rule, n in known[name]]
    if known.get("stale"):
        lines += ["", "## Rules that matched nothing in the new run", "", "| rule | status |", "|---|---|"]
        lines += [f"| `{rule}` | {status} |" for rule, status in known["stale"]]
    return lines


def markdown(changes: dict[str, list], old_name: str, new_name: str) -> str:
    def row(record: dict[str, Any]) -> str:
        return (f"| {record['impl']} | {record['device']} | {record['dtype']} | {record['check']} | "
                f"{record.get('summary', '')} | `{record.get('descriptor', '')}` |")

    header = "| implementation | device | dtype | check | summary | problem |\n|---|---|---|---|---|---|"
    known = changes.get("known") or {"new": [], "gone": [], "persisting": [], "stale": []}
    lines = [f"# Regression report: {old_name} -> {new_name}", "",
             f"{len(changes['new'])} new, {len(changes['fixed'])} fixed, {len(changes['persisting'])} persisting.",
             f"Known discrepancies by rule: {len(known['new'])} newly matched, {len(known['gone'])} no longer "
             f"matched, {len(known['persisting'])} persisting, {len(known['stale'])} newly stale.", ""]
    for title, name in (("New", "new"), ("Fixed", "fixed"), ("Persisting", "persisting")):
        if changes[name]:
            lines += [f"## {title}", "", header] + [row(r) for r in changes[name]] + [""]
    if changes["changed"]:
        lines += ["## Changed error magnitude (worst error / allowance)", "",
                  "| implementation | device | dtype | check | before | after |", "|---|---|---|---|---:|---:|"]
        lines += [f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {a:.3g} | {b:.3g} |" for k, a, b in changes["changed"]]
    lines += _known_lines(changes.get("known") or {})
    new_repros = [r["repro"] for r in changes["new"]]
    if new_repros:
        lines += ["", "## Reproduce the new ones", "", "```"] + new_repros + ["```"]
    return "\n".join(lines).rstrip() + "\n"
