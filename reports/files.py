"""The files of a report folder, named in one place: what a run writes there and what a person reads."""

from __future__ import annotations

REPORT_JSON = "report.json"  # the merged discrepancies and summary; every document is rendered from it
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
DOCUMENTS = (REPORT_MD, REPORT_HTML)  # rendered by reports.render.RENDERERS
RECORD_GLOB = "records-*.jsonl"  # one per process, appended to as discrepancies are found


def records_file(worker: str) -> str:
    return f"records-{worker}.jsonl"


TALLY_GLOB = "tally-*.json"  # each process's counts at the end of its session
TALLY_MAIN = "tally-main.json"  # the controller's (the workers' merged into it)
PROGRESS_GLOB = "progress-*.json"  # a campaign's live counts (what a killed run leaves instead of tallies)


def progress_file(worker: str) -> str:
    return f"progress-{worker}.json"


CORPUS_DIR = "corpus"  # minimized failures, replayed first by the next run
# What a run starts by removing: a run that finds and counts nothing must not show the last one's documents.
RUN_OUTPUTS = (RECORD_GLOB, TALLY_GLOB, PROGRESS_GLOB, REPORT_JSON, *DOCUMENTS)
