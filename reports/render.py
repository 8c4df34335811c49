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
    return report.get("causes") or causes.group(report["discrepancies"])


def _headline(report: dict[str, Any], found: list[dict[str, Any]]) -> str:
    counts = _counts(report)
    unexpected = [c for c in found if c["status"] == "unexpected"]
    severe = sum(1 for c in unexpected if c["severity"] == "severe")
    known = [c for c in found if c["status"] != "unexpected"]
    return (f"{plural(counts['unexpected'], 'unexpected discrepancy', 'unexpected discrepancies')} in "
            f"{plural(len(unexpected), 'cause')}{f', {severe} of them severe' if severe else ''}; "
            + (f"{counts['known']} known, by {plural(len(known), 'declared rule')}." if known else "none known."))


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``count`` and the noun in the number it takes."""
    return f"{count} {singular if count == 1 else many or singular + 's'}"


def shortened(text: str, limit: int) -> str:
    """``text`` cut at a word (never mid-word) to at most ``limit`` characters."""
    return textwrap.shorten(text, limit, placeholder=" [...]")


def number(value: Any) -> str:
    """A value as a person reads it: floats to 6 significant digits, lists of them alike."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(number(v) for v in value) + "]"
    return str(value)


def met_in(cause: dict[str, Any]) -> str:
    """Where a cause was met: its checks, dtypes, dims and layouts, each listed once."""
    dims = ", ".join(f"{d}d" for d in cause.get("dims", []))
    parts = [", ".join(cause.get("checks", [])), ", ".join(map(str, cause.get("dtypes", []))), dims,
             ", ".join(cause.get("layouts", []))]
    return "; ".join(part for part in parts if part)


def _cause_row(number_: int, cause: dict[str, Any]) -> str:
    title = shortened(cause["title"], 200).replace("|", "\\|")
    return (f"| {number_} | {cause['severity']} | `{cause['impl']}` | {title} | `{cause['problem']}` | "
            f"{met_in(cause)} | {cause['count']} |")


def _environment_line(env: dict[str, Any]) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in (env.get("implementation_versions") or {}).items())
    # which kernels PyTorch picks on this CPU: the same problem may pass on one machine and fail on another
    onednn = " and ".join(dtype for dtype in ("bfloat16", "float16") if env.get(f"{dtype}_on_onednn"))
    return (f"Environment: torch {env.get('torch')}, CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}, "
            f"GPU {env.get('gpu')}, CPU {env.get('cpu')}{f' (PyTorch takes oneDNN in {onednn})' if onednn else ''}, "
            f"Python {env.get('python')}{f'; implementations: {versions}' if versions else ''}")


CAUSE_HEADER = ["| # | severity | implementation | cause, on its smallest example | smallest problem | met in "
                "| found |", "|---:|---|---|---|---|---|---:|"]


def markdown(report: dict[str, Any]) -> str:
    """Fit for a pull-request comment: the verdict, one row per unexpected cause (its title from its smallest
    example, where it was met, its count), one reproduce line per cause, the known causes folded away, then
    the run and its environment. Details and pictures are in report.html and report.json."""
    summary = report.get("summary", {})
    found = _causes(report)
    unexpected = [c for c in found if c["status"] == "unexpected"]
    known = [c for c in found if c["status"] != "unexpected"]
    verdict = "FAIL" if _counts(report)["unexpected"] else "PASS"
    lines = [f"# convt-conformance: {verdict}", "", _headline(report, found), ""]
    if unexpected:
        lines += CAUSE_HEADER + [_cause_row(n, cause) for n, cause in enumerate(unexpected, 1)]
        lines += ["", "```sh"]
        for n, cause in enumerate(unexpected, 1):
            lines += [f"# {n}. {cause['impl']}: {cause['defect']} (or: {record_repro(cause)})",
                      report["discrepancies"][cause["example"]]["repro"]]
        lines += ["```", ""]
    if known:
        lines += ["<details><summary>" + plural(len(known), "known discrepancy", "known discrepancies") +
                  ", declared in the expectations</summary>", ""]
        lines += [f"- `{c['rule']}` on `{c['impl']}` ({c['count']} found, {met_in(c)})" for c in known]
        lines += ["", "</details>", ""]
    for stale in summary.get("stale_rules", []):
        status = stale.get("status", "fixed")
        lines.append(f"- expectation `{stale['id']}` matched nothing in this run: "
                     f"{'stale (fixed?)' if status == 'fixed' else status}")
    domain = summary.get("domain") or []
    if domain:
        lines += ["", "Declared domains, narrower than PyTorch's (valid problems outside each requirement): " +
                  "; ".join(f"`{r['impl']}` needs {r['requirement']}: {r['refused']} refused, {r['accepted']} "
                            f"accepted" for r in domain), ""]
    rows = _table_rows(report)
    if rows:
        examples = sum(r["examples"] for r in rows)
        passed = sum(1 for r in rows if r["verdict"] == "pass")
        lines.append(f"{plural(len(rows), '(implementation, check) pair')} ran {plural(examples, 'example')}; "
                     f"{passed} passed. Every cause's details, pictures and standalone script: report.html.")
    env = summary.get("environment") or {}
    if env:
        lines += ["", f"{_environment_line(env)}; profile `{summary.get('profile') or env.get('profile')}`."]
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


PICTURE_MIN_ELEMENTS = 16  # a smaller slice reads better as a table of its numbers than as a heatmap


def html_document(report: dict[str, Any]) -> str:
    """One self-contained HTML file: the verdict, the cause table, then per cause its smallest example with
    its details, picture (a table of numbers for a tiny slice), explanation and reproduce command, then the
    run's tables and its environment. Everything from the run is escaped."""
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    summary = report.get("summary", {})
    found = _causes(report)
    verdict = "fail" if _counts(report)["unexpected"] else "pass"
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>convt-conformance report</title>",
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>convt-conformance: <span class='{verdict}'>{verdict.upper()}</span></h1>",
             f"<p>{e(_headline(report, found))}</p>"]
    if found:
        parts.append("<table id='causes'><tr><th>#</th><th>status</th><th>severity</th><th>implementation</th>"
                     "<th>cause, on its smallest example</th><th>smallest problem</th><th>met in</th>"
                     "<th>found</th></tr>")
        for n, cause in enumerate(found, 1):
            status = "fail" if cause["status"] == "unexpected" else "known"
            parts.append(f"<tr class='cause'><td><a href='#cause-{n}'>{n}</a></td><td class='{status}'>"
                         f"{e(cause['status'])}</td><td>{e(cause['severity'])}</td><td>{e(cause['impl'])}</td>"
                         f"<td>{e(cause['title'])}</td><td><code>{e(cause['problem'])}</code></td>"
                         f"<td>{e(met_in(cause))}</td><td class='n'>{cause['count']}</td></tr>")
        parts.append("</table>")
    for n, cause in enumerate(found, 1):
        parts += _example_section(n, cause, report["discrepancies"][cause["example"]], e)
    parts += _run_tables(summary, _table_rows(report), e)
    env = summary.get("environment") or {}
    if env:
        parts.append("<h2>Environment</h2><table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>"
                                                            for k, v in env.items()) + "</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _run_tables(summary: dict[str, Any], rows: list[dict[str, Any]], e) -> list[str]:
    """Every (implementation, check) pair, folded, and the declared domains."""
    parts = []
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
    return parts


def _example_section(n: int, cause: dict[str, Any], d: dict[str, Any], e) -> list[str]:
    """A cause's smallest example: its message, problem, details, picture, explanation and reproduce command."""
    style = "fail" if cause["status"] == "unexpected" else "known"
    parts = [f"<section id='cause-{n}'><h2>{n}. <span class='{style}'>{e(cause['status'])}</span> "
             f"{e(cause['severity'])}: {e(cause['impl'])} on {e(cause['device'])}: {e(cause['defect'])}</h2>",
             f"<p>Found {plural(cause['count'], 'time')}, in {e(met_in(cause))}. Smallest example "
             f"({e(d['dtype'])}, {e(d.get('ran_check') or d['check'])} check): {e(d.get('summary', ''))}</p>",
             f"<p>Problem: <code>{e(d.get('descriptor', ''))}</code></p>"]
    if d.get("rule"):
        inherited = f" (inherited from {e(d['rule']['inherited_from'])})" if d["rule"].get("inherited_from") else ""
        parts.append(f"<p>Known discrepancy <code>{e(d['rule']['id'])}</code>{inherited}: {e(d['rule']['reason'])} "
                     f"{e(d['rule'].get('link', ''))}</p>")
    details = {k: v for k, v in (d.get("details") or {}).items() if k not in ("explanation", "worker output")}
    if details:
        parts.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(number(v))}</td></tr>"
                                         for k, v in details.items()) + "</table>")
    output = (d.get("details") or {}).get("worker output")
    if output:
        parts.append(f"<h3>What the worker printed last</h3><pre>{e(output)}</pre>")
    if d.get("picture"):
        parts += _picture_or_numbers(d["picture"], e)
    explanation = (d.get("details") or {}).get("explanation")
    if explanation:
        parts.append(f"<h3>Which products sum into the worst element</h3><pre>{e(explanation)}</pre>")
    parts.append(f"<h3>Reproduce</h3><pre>{e(d['repro'])}\n# or: {e(record_repro(cause))}</pre>")
    parts.append(f"<details><summary>standalone script</summary><pre>{e(d.get('script', ''))}</pre></details>")
    parts.append("</section>")
    return parts


def _picture_or_numbers(picture: dict[str, Any], e) -> list[str]:
    """Where the error sits: a heatmap, or for a slice too small to show anything, its numbers."""
    values = picture.get("values") or []
    if sum(len(row) for row in values) < PICTURE_MIN_ELEMENTS:
        row_at, col_at = picture.get("marked", [-1, -1])
        cells = lambda r, row: "".join(  # noqa: E731
            f"<td class='n'>{'<b>' if (r, c) == (row_at, col_at) else ''}{e(number(v))}"
            f"{'</b>' if (r, c) == (row_at, col_at) else ''}</td>" for c, v in enumerate(row))
        return [f"<p>{e(picture.get('title', ''))} over the output (worst in bold):</p>",
                "<table class='numbers'>" + "".join(f"<tr>{cells(r, row)}</tr>" for r, row in enumerate(values))
                + "</table>"]
    try:
        png = _picture_png(picture)
    except Exception as exc:  # noqa: BLE001  (a picture must never cost the report)
        return [f"<p>(no picture: {e(type(exc).__name__)}: {e(exc)})</p>"]
    return [f"<img alt='error over the output slice' src='data:image/png;base64,{png}'>"] if png else []


RENDERERS = {REPORT_MD: markdown, REPORT_HTML: html_document}
assert set(RENDERERS) == set(DOCUMENTS)


def write_documents(report: dict[str, Any], directory: str | Path) -> None:
    """Every document of :data:`RENDERERS`, rendered from ``report`` into ``directory``."""
    for name, render in RENDERERS.items():
        (Path(directory) / name).write_text(render(report), encoding="utf-8")
