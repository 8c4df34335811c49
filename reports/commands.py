"""``convt report``: merge worker records, render documents, diff two runs.

    convt report merge DIR            merge DIR's worker records into DIR/report.json (+ .md, .html)
    convt report combine OUT A.json B.json ...   one report from several machines' report.json
    convt report render REPORT.json   (re)write report.md and report.html beside it
    convt report diff OLD.json NEW.json [-o OUT.md]   regression report; exit 1 if something is new
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import diff as diffing
from .files import REPORT_JSON
from .records import ReportError, merge, merge_reports, read_report
from .render import write_documents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convt report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    merge_cmd = commands.add_parser("merge", help="merge worker records into report.json")
    merge_cmd.add_argument("directory", type=Path)
    combine_cmd = commands.add_parser("combine", help="one report from several machines' report.json")
    combine_cmd.add_argument("directory", type=Path)
    combine_cmd.add_argument("reports", type=Path, nargs="+")
    render_cmd = commands.add_parser("render", help="write report.md and report.html from report.json")
    render_cmd.add_argument("report", type=Path)
    diff_cmd = commands.add_parser("diff", help="regression report between two report.json files")
    diff_cmd.add_argument("old", type=Path)
    diff_cmd.add_argument("new", type=Path)
    diff_cmd.add_argument("-o", "--output", type=Path, help="write the Markdown here (default: stdout)")
    args = parser.parse_args(argv)
    try:
        if args.command == "merge":
            if not args.directory.is_dir():
                raise ReportError(f"{args.directory}: no such report folder")
            report, problems = merge(args.directory)
            for problem in problems:
                print(f"warning: {problem}", file=sys.stderr)
            write_documents(report, args.directory)
            print(f"{args.directory / REPORT_JSON}: {len(report['discrepancies'])} discrepancies")
            return 0
        if args.command == "combine":
            report = merge_reports(args.reports, args.directory)
            write_documents(report, args.directory)
            print(f"{args.directory / REPORT_JSON}: {len(report['discrepancies'])} discrepancies "
                  f"from {len(args.reports)} reports")
            return 0
        if args.command == "render":
            write_documents(read_report(args.report), args.report.parent)
            return 0
        changes = diffing.diff(read_report(args.old), read_report(args.new))
        text = diffing.markdown(changes, str(args.old), str(args.new))
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        else:
            print(text, end="")
        return 1 if changes["new"] else 0
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

