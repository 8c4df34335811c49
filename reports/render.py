"""Documents from a report: ``report.md`` (a summary fit for a CI job summary or a pull-request
comment) and ``report.html`` (one self-contained file with a picture per discrepancy).

Every string that came from an implementation or a run is escaped in HTML.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from pathlib import Path
from typing import Any

from . import causes
from .files import DOCUMENTS, REPORT_HTML, REPORT_JSON, REPORT_MD


def _table_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return report.get("summary", {}).get("table", [])


def _counts(report: dict[str, Any]) -> dict[str, int]:
    statuses = [d.get("status", "unexpected") for d in report["discrepancies"]]
    return {"unexpected": statuses.count("unexpected"), "known": statuses.count("known")}


def _causes(report: dict[str, Any]) -> list[dict[str, Any]]:
    return causes.group(report["discrepancies"])


def _headline(report: dict[str, Any], found: list[dict[str, Any]]) -> str:
    counts = _counts(report)
    unexpected = [c for c in found if c["status"] == "unexpected"]
    severe = sum(1 for c in unexpected if c["severity"] == "severe")
    return (f"{plural(counts['unexpected'], 'unexpected discrepancy', 'unexpected discrepancies')} in "
            f"{plural(len(unexpected), 'cause')}{f', {severe} of them severe' if severe else ''}; "
            f"{counts['known']} known (declared in the expectations).")


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``count`` and the noun in the number it takes."""
    return f"{count} {singular if count == 1 else many or singular + 's'}"


def shortened(text: str, limit: int) -> str:
    """``text`` cut at a word (never mid-word) to at most ``limit`` characters."""
    return textwrap.shorten(text, limit, placeholder=" [...]")


def _cause_title(cause: dict[str, Any]) -> str:
    dtypes = ", ".join(str(d) for d in cause["dtypes"])
    ran = "" if cause["check"] == cause["ran_check"] else f" in {cause['ran_check']}"
    return f"{cause['impl']} on {cause['device']} ({dtypes}): {cause['check']}{ran}"


def _cause_row(number: int, cause: dict[str, Any]) -> str:
    rule = f" (`{cause['rule']}`)" if cause["rule"] else ""
    return (f"| {number} | {cause['status']}{rule} | {cause['severity']} | {_cause_title(cause)}: "
            f"{shortened(cause['message'], 160)} | {cause['signature']} | {cause['count']} |")


def _environment_line(env: dict[str, Any]) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in (env.get("implementation_versions") or {}).items())
    # which kernels PyTorch picks on this CPU: the same problem may pass on one machine and fail on another
    onednn = " and ".join(dtype for dtype in ("bfloat16", "float16") if env.get(f"{dtype}_on_onednn"))
    return (f"Environment: torch {env.get('torch')}, CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}, "
            f"GPU {env.get('gpu')}, CPU {env.get('cpu')}{f' (PyTorch takes oneDNN in {onednn})' if onednn else ''}, "
            f"Python {env.get('python')}{f'; implementations: {versions}' if versions else ''}")


def markdown(report: dict[str, Any]) -> str:
    """The verdict, the causes (one row per cause, with its count), the domain table, and one example per
    cause with its reproduce command; the (implementation, check) table lists only what did not pass."""
    summary = report.get("summary", {})
    found = _causes(report)
    verdict = "FAIL" if _counts(report)["unexpected"] else "PASS"
    lines = [f"# convt-conformance: {verdict}", "", _headline(report, found), ""]
    env = summary.get("environment") or {}
    if env:
        lines += [f"{_environment_line(env)}; profile `{summary.get('profile')}`.", ""]
    rows = _table_rows(report)
    if rows:
        lines += [f"{len(rows)} (implementation, check) pairs ran, {sum(r['examples'] for r in rows)} examples; "
                  f"{sum(1 for r in rows if r['verdict'] == 'pass')} passed."]
        shown = [r for r in rows if r["verdict"] != "pass"]
        if shown:
            lines += ["", "| implementation | check | examples | passed | failed | known |",
                      "|---|---|---:|---:|---:|---:|"]
            lines += [f"| {r['impl']} | {r['check']} | {r['examples']} | {r['passed']} | {r['failed']} | "
                      f"{r['known']} |" for r in shown]
        lines.append("")
    domain = summary.get("domain") or []
    if domain:
        lines += ["Declared domains, narrower than PyTorch's (valid problems outside each requirement):", "",
                  "| implementation | needs | refused | accepted |", "|---|---|---:|---:|"]
        lines += [f"| {r['impl']} | {r['requirement']} | {r['refused']} | {r['accepted']} |" for r in domain]
        lines.append("")
    for stale in summary.get("stale_rules", []):
        status = stale.get("status", "fixed")
        lines.append(f"- expectation `{stale['id']}` matched nothing in this run: "
                     f"{'stale (fixed?)' if status == 'fixed' else status}")
    if found:
        lines += ["", "## Causes", "", "| # | status | severity | cause | problems | found |",
                  "|---:|---|---|---|---|---:|"]
        lines += [_cause_row(number, cause) for number, cause in enumerate(found, 1)]
    for number, cause in enumerate(found, 1):
        d = report["discrepancies"][cause["example"]]
        lines += ["", f"### {number}. {cause['status']}, {cause['severity']}: `{cause['impl']}` on {d['device']} "
                  f"{d['dtype']}: {d['check']} ({cause['count']} found)", "",
                  f"{d.get('summary', '')}", "", f"Problem: `{d.get('descriptor', '')}`", ""]
        if d.get("rule"):
            inherited = f" (inherited from `{d['rule']['inherited_from']}`)" if d["rule"].get("inherited_from") else ""
            lines += [f"Known: `{d['rule']['id']}`{inherited}: {d['rule']['reason']} {d['rule'].get('link', '')}", ""]
        lines += ["```", d["repro"], f"# or: {record_repro(cause)}", "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def record_repro(cause: dict[str, Any]) -> str:
    """The command that reruns a cause's example from report.json: discrepancies are numbered from 1, in
    report.json's order (a cause's own number, in the reports' table, is another count)."""
    return f"convt repro --record {REPORT_JSON} --index {cause['example'] + 1}"


def _picture_png(picture: dict[str, Any]) -> str | None:
    """The error over the output slice holding the worst element, as a base64 PNG (matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return None
    values = np.array([[np.nan if v is None else v for v in row] for row in picture["values"]], dtype=float)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    # Errors span many orders of magnitude: plot log10, with zeros at the floor of the finite ones.
    positive = values[finite & (values > 0)]
    floor = positive.min() if positive.size else 1.0
    values = np.where(finite, np.log10(np.clip(values, floor, None)), np.nan)
    figure, axes = plt.subplots(figsize=(min(2 + values.shape[1] * 0.35, 9), min(1.5 + values.shape[0] * 0.35, 7)))
    image = axes.imshow(values, cmap="magma", interpolation="nearest", aspect="auto")
    row, col = picture["marked"]
    axes.plot(col, row, marker="s", markersize=12, markerfacecolor="none", markeredgecolor="cyan", markeredgewidth=2)
    top, left = picture.get("origin", [0, 0])
    row_axis, column_axis = picture.get("axes", ["", ""])
    axes.set_xlabel(f"output {column_axis}, from index {left}")
    axes.set_ylabel(f"output {row_axis}, from index {top}" if row_axis else "")
    lead = ", ".join(str(i) for i in picture.get("slice", []))
    axes.set_title(f"log10 {picture['title']} over output[{lead + ', ' if lead else ''}...]; worst element boxed",
                   fontsize=9)
    figure.colorbar(image, ax=axes)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


_STYLE = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
td.n{text-align:right}.fail{color:#b00020;font-weight:bold}.known{color:#8a6d00}.pass{color:#1b5e20}
pre{background:#f5f5f5;padding:.5rem;overflow-x:auto;white-space:pre-wrap}
section{border-top:2px solid #ddd;margin-top:2rem}"""


def html_document(report: dict[str, Any]) -> str:
    """One self-contained HTML file: the verdict, the causes, the tables, then per cause one example with
    its details, picture, explanation and reproduce command (pictures only for a cause's example, so a run
    with hundreds of findings stays a readable page). Everything from the run is escaped."""
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    summary = report.get("summary", {})
    found = _causes(report)
    verdict = "fail" if _counts(report)["unexpected"] else "pass"
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>convt-conformance report</title>",
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>convt-conformance: <span class='{verdict}'>{verdict.upper()}</span></h1>",
             f"<p>{e(_headline(report, found))}</p>"]
    if found:
        parts.append("<table><tr><th>#</th><th>status</th><th>severity</th><th>cause</th><th>problems</th>"
                     "<th>found</th></tr>")
        for number, cause in enumerate(found, 1):
            status = "fail" if cause["status"] == "unexpected" else "known"
            parts.append(f"<tr><td><a href='#cause-{number}'>{number}</a></td><td class='{status}'>{e(cause['status'])}"
                         f"</td><td>{e(cause['severity'])}</td><td>{e(_cause_title(cause))}: {e(cause['message'])}</td>"
                         f"<td>{e(cause['signature'])}</td><td class='n'>{cause['count']}</td></tr>")
        parts.append("</table>")
    env = summary.get("environment") or {}
    if env:
        parts.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in env.items())
                     + "</table>")
    rows = _table_rows(report)
    if rows:
        parts.append("<details><summary>every (implementation, check) pair</summary><table><tr><th>implementation"
                     "</th><th>check</th><th>examples</th><th>passed</th><th>failed</th><th>known</th>"
                     "<th>verdict</th></tr>")
        for r in rows:
            parts.append(f"<tr><td>{e(r['impl'])}</td><td>{e(r['check'])}</td><td class='n'>{r['examples']}</td>"
                         f"<td class='n'>{r['passed']}</td><td class='n'>{r['failed']}</td>"
                         f"<td class='n'>{r['known']}</td><td class='{e(r['verdict'])}'>{e(r['verdict'])}</td></tr>")
        parts.append("</table></details>")
    domain = summary.get("domain") or []
    if domain:
        parts.append("<h2>Declared domains, narrower than PyTorch's</h2><table><tr><th>implementation</th>"
                     "<th>needs</th><th>refused</th><th>accepted</th></tr>")
        parts += [f"<tr><td>{e(r['impl'])}</td><td>{e(r['requirement'])}</td><td class='n'>{e(r['refused'])}</td>"
                  f"<td class='n'>{e(r['accepted'])}</td></tr>" for r in domain]
        parts.append("</table>")
    for number, cause in enumerate(found, 1):
        parts += _example_section(number, cause, report["discrepancies"][cause["example"]], e)
    parts.append("</body></html>")
    return "\n".join(parts)


def _example_section(number: int, cause: dict[str, Any], d: dict[str, Any], e) -> list[str]:
    """A cause's example: its message, problem, details, picture, explanation and reproduce command."""
    status = d.get("status", "unexpected")
    style = "fail" if status == "unexpected" else "known"
    parts = [f"<section id='cause-{number}'><h2>{number}. <span class='{style}'>{e(status)}</span> "
             f"{e(cause['severity'])}: {e(d['impl'])} on {e(d['device'])} {e(d['dtype'])}: "
             f"{e(d['check'])} ({cause['count']} found)</h2>",
             f"<p>{e(d.get('summary', ''))}</p><p>Problem: <code>{e(d.get('descriptor', ''))}</code></p>"]
    if d.get("rule"):
        inherited = f" (inherited from {e(d['rule']['inherited_from'])})" if d["rule"].get("inherited_from") else ""
        parts.append(f"<p>Known discrepancy <code>{e(d['rule']['id'])}</code>{inherited}: {e(d['rule']['reason'])} "
                     f"{e(d['rule'].get('link', ''))}</p>")
    details = {k: v for k, v in (d.get("details") or {}).items() if k != "explanation"}
    if details:
        parts.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in details.items())
                     + "</table>")
    if d.get("picture"):
        try:
            png = _picture_png(d["picture"])
        except Exception as exc:  # noqa: BLE001  (a picture must never cost the report)
            png = None
            parts.append(f"<p>(no picture: {e(type(exc).__name__)}: {e(exc)})</p>")
        if png:
            parts.append(f"<img alt='error over the output slice' src='data:image/png;base64,{png}'>")
    explanation = (d.get("details") or {}).get("explanation")
    if explanation:
        parts.append(f"<h3>Which products sum into the worst element</h3><pre>{e(explanation)}</pre>")
    parts.append(f"<h3>Reproduce</h3><pre>{e(d['repro'])}\n# or: {e(record_repro(cause))}</pre>")
    parts.append(f"<details><summary>standalone script</summary><pre>{e(d.get('script', ''))}</pre></details>")
    parts.append("</section>")
    return parts


RENDERERS = {REPORT_MD: markdown, REPORT_HTML: html_document}
assert set(RENDERERS) == set(DOCUMENTS)


def write_documents(report: dict[str, Any], directory: str | Path) -> None:
    """Every document of :data:`RENDERERS`, rendered from ``report`` into ``directory``."""
    for name, render in RENDERERS.items():
        (Path(directory) / name).write_text(render(report), encoding="utf-8")
