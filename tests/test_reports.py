"""Reports: a planted bug yields report.json/.md/.html whose reproduce commands and scripts
reproduce it; a killed run loses no record; diffs list new and fixed discrepancies; malformed files
give one clear line and never stop the rest."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from convt_conformance import impls
from convt_conformance.cli import main as suites_main
from convt_conformance.reports import causes
from convt_conformance.reports import diff as diffing
from convt_conformance.reports.records import RecordWriter, ReportError, merge, read_records, read_report
from convt_conformance.reports.render import html_document, markdown
from convt_conformance.suites.case import Case
from convt_conformance.suites.problem import Problem
from convt_conformance.suites.reproduce import standalone_script

from .conftest import PLANTED, ROOT

BUGS = str(PLANTED / "oracle_bugs.py")


@pytest.mark.slow
def test_a_planted_bug_produces_reports_that_reproduce(tmp_path, gate):
    out = tmp_path / "out"
    run = gate("--impl-module", BUGS, "--impl", "bug-exact-group0-bias", "--dtype", "float32",
               "--report-dir", str(out), "-k", "test_exact or test_bound")
    assert run.returncode == 1
    report = read_report(out / "report.json")
    unexpected = [d for d in report["discrepancies"] if d["status"] == "unexpected"]
    assert {d["check"] for d in unexpected} >= {"exact", "bound"}
    assert report["summary"]["environment"]["torch"] and report["summary"]["table"]
    assert "bug-exact-group0-bias" in (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "Which products sum into the worst element" in html
    # the cause's smallest example is tiny: its numbers, not a heatmap (a larger one is pictured: below)
    assert "over the output (worst in bold)" in html and len(report["causes"]) == 1
    for record in unexpected:
        activated = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        replay = subprocess.run(record["repro"], shell=True, cwd=ROOT, capture_output=True, text=True, env=activated)
        assert replay.returncode == 1 and "reproduced:" in replay.stdout, replay.stdout + replay.stderr
        script = subprocess.run([sys.executable, "-c", record["script"]], cwd=ROOT, capture_output=True, text=True)
        assert script.returncode == 0 and "reference" in script.stdout and "implementation" in script.stdout
        differences = [float(line.split()[-1]) for line in script.stdout.splitlines() if line.strip().startswith("[")]
        assert differences and max(differences) > 0
    corpus = list((out / "corpus").glob("*.json"))
    assert corpus, "minimized failures are saved for the next run to replay"


@pytest.mark.slow
def test_a_killed_run_keeps_every_record_found_before_the_kill(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "-n", "0",
               "--impl-module", BUGS, "--impl-module", str(PLANTED / "slow.py"),
               "--impl", "bug-shape-drops-output-padding", "--impl", "slow-correct", "--dtype", "float32",
               "--report-dir", str(out), "-k", "not test_replay"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    records_file = out / "records-main.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if records_file.exists() and len(records_file.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be killed"
    found_before = len(records_file.read_text().splitlines())
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    records, problems = read_records(records_file)
    assert len(records) >= found_before >= 3 and not problems
    merged = subprocess.run([sys.executable, "-m", "convt_conformance", "report", "merge", str(out)], cwd=ROOT,
                            capture_output=True, text=True)
    assert merged.returncode == 0, merged.stderr
    # Two tests may find the same minimal problem (a batch of 0): the report lists it once.
    distinct = {json.dumps([r[k] for k in ("impl", "dtype", "check", "problem")], sort_keys=True) for r in records}
    assert len(read_report(out / "report.json")["discrepancies"]) == len(distinct) >= 2
    assert (out / "report.html").exists() and (out / "report.md").exists()


def test_a_diff_lists_the_planted_bug_as_new_and_as_fixed(tmp_path, gate):
    with_bug, without = tmp_path / "with", tmp_path / "without"
    common = ["--impl-module", BUGS, "--dtype", "float32", "-k", "test_exact and not test_replay"]
    gate(*common, "--impl", "naive", "--impl", "bug-exact-group0-bias", "--report-dir", str(with_bug))
    gate(*common, "--impl", "naive", "--report-dir", str(without))
    fixed = subprocess.run([sys.executable, "-m", "convt_conformance", "report", "diff", str(with_bug / "report.json"),
                            str(without / "report.json")], cwd=ROOT, capture_output=True, text=True)
    assert fixed.returncode == 0 and "## Fixed" in fixed.stdout and "bug-exact-group0-bias" in fixed.stdout
    new = subprocess.run([sys.executable, "-m", "convt_conformance", "report", "diff", str(without / "report.json"),
                          str(with_bug / "report.json")], cwd=ROOT, capture_output=True, text=True)
    assert new.returncode == 1 and "## New" in new.stdout and "convt repro" in new.stdout


def record(**changes):
    base = {"impl": "k", "device": "cpu", "dtype": "float32", "check": "bound", "problem": {}, "repro": "r",
            "status": "unexpected", "details": {"error/allowance": 3.0}}
    return {**base, **changes}


def test_torn_and_malformed_lines_are_skipped_with_one_line_each(tmp_path):
    path = tmp_path / "records-gw0.jsonl"
    writer = RecordWriter(tmp_path, "gw0")
    writer.write(record())
    with path.open("a") as handle:
        handle.write('{"impl": "k", "no": "repro"}\n')
        handle.write('{"impl": "torn by a kil')
    records, problems = read_records(path)
    assert len(records) == 1 and len(problems) == 2
    assert all(str(path) in p and "\n" not in p for p in problems)
    report, merge_problems = merge(tmp_path)
    assert len(report["discrepancies"]) == 1 and len(merge_problems) == 2


@pytest.mark.parametrize("content, message", [
    ("not json", "not a JSON report"),
    ('{"x": 1}', "no 'discrepancies' list"),
    ('{"discrepancies": [{"impl": "k"}]}', "discrepancy 1 lacks"),
])
def test_a_corrupt_report_is_named_in_one_line(tmp_path, content, message):
    path = tmp_path / "report.json"
    path.write_text(content)
    with pytest.raises(ReportError) as raised:
        read_report(path)
    assert message in str(raised.value) and str(path) in str(raised.value)
    cli = subprocess.run([sys.executable, "-m", "convt_conformance", "report", "diff", str(path), str(path)], cwd=ROOT,
                         capture_output=True, text=True)
    assert cli.returncode == 2 and cli.stderr.count("\n") == 1 and "Traceback" not in cli.stderr


def test_strings_from_implementations_are_escaped_in_html():
    evil = "<script>alert(1)</script>"
    report = {"discrepancies": [record(impl=evil, summary=evil, descriptor=evil, script=evil,
                                       details={"explanation": evil, "got": evil})], "summary": {}}
    page = html_document(report)
    assert evil not in page and "&lt;script&gt;" in page
    assert evil in markdown(report)  # Markdown is text; the renderer that shows it escapes


def test_the_report_says_where_pytorch_takes_onednn_on_the_machine_it_ran_on():
    def page(**facts):
        return markdown({"discrepancies": [], "summary": {"environment": {"torch": "2.13.0", "cpu": "Xeon", **facts}}})
    assert "CPU Xeon (PyTorch takes oneDNN in bfloat16 and float16)" in page(bfloat16_on_onednn=True,
                                                                            float16_on_onednn=True)
    assert "CPU Xeon (PyTorch takes oneDNN in bfloat16)," in page(bfloat16_on_onednn=True, float16_on_onednn=False)
    assert "CPU Xeon, Python" in page()  # a report from before the facts were recorded


def test_diff_reports_changed_magnitudes():
    old = {"discrepancies": [record(details={"error/allowance": 3.0})]}
    new = {"discrepancies": [record(details={"error/allowance": 300.0})]}
    changes = diffing.diff(old, new)
    assert not changes["new"] and not changes["fixed"] and changes["changed"]
    assert "| 3 | 300 |" in diffing.markdown(changes, "a", "b")


def test_a_malformed_corpus_file_is_named_and_the_run_goes_on(tmp_path, gate):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bad.json").write_text("{not json")
    (corpus / "wrong.json").write_text(json.dumps({"problem": {"input_shape": [1]}, "checks": ["exact"]}))
    run = gate("--impl", "naive", "--dtype", "float32", "--corpus", str(corpus), "-k", "test_shape")
    assert run.returncode == 0, run.output[-2000:]
    assert "bad.json: not a corpus entry" in run.output and "wrong.json: not a corpus entry" in run.output


GROUPED = ('{"input_shape": [1, 2, 3], "weight_shape": [2, 1, 2], "bias": false, "stride": [1], "padding": [0], '
           '"output_padding": [0], "dilation": [1], "groups": 2, "dtype": "float32"}')


def test_a_crash_reproduces_as_a_crash_contained(capsys):
    crashing = str(PLANTED / "crashing.py")
    status = suites_main(["repro", "--impl", "segfault-on-groups", "--check", "crash", "--impl-module", crashing,
                          "--problem", GROUPED])
    printed = capsys.readouterr().out
    assert status == 1 and "reproduced: crash" in printed and "SIGSEGV" in printed, printed


def test_the_standalone_script_reruns_an_invalid_problem(tmp_path):
    rule = "output_padding >= max(stride, dilation)"
    problem = Problem.from_dict(json.loads(GROUPED)).replace(output_padding=(3,), broken_rule=rule)
    case = Case(impls.get("naive"), "cpu", "float32")
    script = tmp_path / "repro.py"
    script.write_text(standalone_script(case, problem, "invalid-accepted", ()))
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr  # naive refuses it, as the definition does
    assert "the definition refuses this problem" in done.stdout and "implementation raised" in done.stdout


def test_a_failure_that_does_not_happen_again_is_still_recorded(tmp_path, gate):
    out = tmp_path / "out"
    run = gate("--impl-module", str(PLANTED / "oracle_bugs.py"), "--impl", "bug-flaky-exact", "-k", "test_exact",
               "--contain", "none", "--report-dir", str(out))
    assert run.returncode == 1 and "Flaky" in run.output, run.output[-3000:]
    found = [d for d in read_report(out / "report.json")["discrepancies"] if d["status"] == "unexpected"]
    assert [d["impl"] for d in found] == ["bug-flaky-exact"], found
    assert found[0]["summary"].startswith("(did not fail again on replay: nondeterministic)"), found[0]["summary"]


def test_each_kind_of_discrepancy_in_one_test_is_shrunk_and_recorded_on_its_own(tmp_path, gate):
    out = tmp_path / "out"
    run = gate("--impl-module", str(PLANTED / "oracle_bugs.py"), "--impl", "bug-two-kinds", "-k", "test_exact",
               "--contain", "none", "--report-dir", str(out))
    assert run.returncode == 1, run.output[-3000:]
    found = [d for d in read_report(out / "report.json")["discrepancies"] if d["status"] == "unexpected"]
    assert {d["check"] for d in found} == {"exact", "valid-refused"}, [d["summary"] for d in found]
    by_kind = {d["check"]: Problem.from_dict(d["problem"]) for d in found}
    assert by_kind["valid-refused"].groups == 2 and by_kind["exact"].groups == 1  # each shrunk to its own minimum
    assert by_kind["exact"].stride == (2,)


@pytest.mark.parametrize("contain", ["none", "plugins"])  # contained, an example's calls are made in one round trip
def test_an_invalid_problem_answered_with_garbage_is_severe_and_no_benign_rule_hides_it(tmp_path, gate, contain):
    rules = tmp_path / "benign.toml"
    rules.write_text('[[expected]]\nid = "accepts-invalid"\nimpl = ["bug-garbage-bias-broadcast", '
                     '"bug-garbage-empty-input", "bug-b13-accepts-empty-output"]\ncheck = "invalid-accepted"\n'
                     'reason = "declared harmless"\n')
    out = tmp_path / "out"
    run = gate("--impl-module", BUGS, "--impl-module", str(PLANTED / "fault_classes.py"),
               "--impl", "bug-garbage-bias-broadcast", "--impl", "bug-garbage-empty-input",
               "--impl", "bug-b13-accepts-empty-output", "--expectations", str(rules), "--dtype", "float32",
               "-k", "test_invalid_raises", "--contain", contain, "--report-dir", str(out),
               "--examples", "100")  # a longer bias reaches the rule in 30 examples on most sequences, not all
    assert run.returncode == 1, run.output[-3000:]
    records = read_report(out / "report.json")["discrepancies"]
    unexpected = {(d["impl"], d["check"]) for d in records if d["status"] == "unexpected"}
    assert unexpected == {("bug-garbage-bias-broadcast", "invalid-garbage"),
                          ("bug-garbage-empty-input", "invalid-garbage")}, unexpected
    summaries = {d["impl"]: d["summary"] for d in records if d["status"] == "unexpected"}
    assert "where the formula gives" in summaries["bug-garbage-bias-broadcast"]
    assert "differ between two identical calls" in summaries["bug-garbage-empty-input"]
    assert any(d["impl"] == "bug-b13-accepts-empty-output" and d["status"] == "known" for d in records)


def _problem_dict(length: int, broken_rule: str | None = None) -> dict:
    return {"input_shape": [1, 1, length], "weight_shape": [1, 1, 2], "value_kind": "real", "layout": "contiguous",
            "broken_rule": broken_rule}


def test_a_report_with_many_findings_of_one_cause_reads_as_one_cause_with_its_smallest_example():
    one_bug = [record(impl="torch-old", check="invalid-accepted", dtype=dtype, problem=_problem_dict(length, "bias "
                      "dtype != input dtype"), summary=f"accepted a problem that breaks 'bias dtype != input dtype' "
                      f"and returned shape (1, 1, {length + 1}) torch.{dtype}", picture={"values": [[1.0]],
                      "marked": [0, 0], "title": "t"}, descriptor=f"L{length}")
               for length in range(9, 3, -1) for dtype in ("float16", "bfloat16", "float32")] * 15
    other = [record(impl="torch-old", check="crash", summary="torch-old's process killed by SIGSEGV during the call",
                    problem=_problem_dict(3)),
             record(impl="torch-old", check="bound", summary="3 of 40 elements exceed the rounding-error allowance "
                    "(worst 2.5x)", problem=_problem_dict(5))]
    report = {"discrepancies": one_bug + other, "summary": {}}
    found = causes.group(report["discrepancies"])
    assert [(c["kinds"], c["severity"], c["count"]) for c in found] == [
        (["crash"], "severe", 1), (["bound"], "wrong", 1), (["invalid-accepted"], "domain", 270)]
    biggest = found[2]
    assert set(biggest["dtypes"]) == {"float16", "bfloat16", "float32"}
    assert report["discrepancies"][biggest["example"]]["problem"]["input_shape"] == [1, 1, 4]  # the smallest
    page = markdown(report)
    assert "272 unexpected discrepancies in 3 causes, 1 of them severe" in page
    assert page.count("\n| ") == 1 + 3 and page.count("python") == 0 and page.count("```") == 2
    assert len(page.splitlines()) < 25 and "#" not in page.split("| found |")[1].split("```")[0].replace("| # |", "")
    assert html_document(report).count("<section") == 3  # one example per cause


def test_diff_lists_known_discrepancies_by_rule():
    """Two runs whose only discrepancies are known: the regression report still lists them, by rule."""
    known = record(status="known", rule={"id": "r-persists", "reason": "r"})
    old = {"discrepancies": [known], "summary": {"rules_matched": {"r-persists": 4, "r-gone": 2}, "stale_rules": []}}
    new = {"discrepancies": [known], "summary": {"rules_matched": {"r-persists": 5, "r-new": 1},
                                                 "stale_rules": [{"id": "r-gone", "status": "fixed"}]}}
    changes = diffing.diff(old, new)
    assert not changes["new"] and not changes["persisting"]
    assert changes["known"] == {"new": [("r-new", 1)], "gone": [("r-gone", 2)],
                                "persisting": [("r-persists", 4, 5)], "stale": [("r-gone", "fixed")]}
    text = diffing.markdown(changes, "a", "b")
    assert "by rule: 1 newly matched, 1 no longer matched, 1 persisting, 1 newly stale" in text
    assert "| `r-persists` | 4 | 5 |" in text


def test_a_refusal_keeps_the_reason_a_wrapped_traceback_puts_last():
    from convt_conformance.suites.checks import error_details, raised

    wrapped = RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Traceback (most recent call last):\n"
                           '  File "op.py", line 3, in run\n    gemm(a, b)\n'
                           "NotImplementedError: FP16 gemm on cpu not implemented!")
    line = raised(wrapped)
    assert line.startswith("RuntimeError: [ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION")
    assert line.endswith("NotImplementedError: FP16 gemm on cpu not implemented!") and "File" not in line
    assert raised(ValueError("word " * 100), limit=40).endswith("[...]")  # cut at a word
    assert error_details(wrapped)["message"].endswith("not implemented!")


def test_the_worst_element_is_a_wrong_one_never_a_correct_structural_zero():
    """A correct structural zero has error 0 and allowance 0 (0/0): it never ranks above a wrong element."""
    from convt_conformance.suites.oracles import exceedance

    y_ref = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float32)  # the last: a value where no product lands
    allowed = torch.tensor([0.0, 1e-7, 0.0], dtype=torch.float64)
    finding = exceedance("bound", y, y_ref, allowed, y_ref.abs(), torch.tensor([0.0, 1.0, 0.0]), torch.float32)
    assert finding.details["index"] == [2] and finding.details["error/allowance"] == math.inf
    assert "1 of 3 elements" in finding.summary and "nan" not in finding.summary


def test_report_md_gives_each_cause_the_index_repro_takes(tmp_path, capsys):
    report = {"summary": {"verdict": "fail", "table": []}, "environment": {},
              "discrepancies": [record(summary="a", descriptor="p1"), record(impl="other", summary="b",
                                                                             descriptor="p2")]}
    text = markdown(report)
    assert "convt repro --record report.json --index 2" in text and "--index 1" in text
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert suites_main(["repro", "--record", str(path), "--index", "0"]) == 2
    assert "numbered from 1 to 2" in capsys.readouterr().err


def test_repro_prints_a_small_problems_data(capsys):
    problem = ('{"input_shape": [1, 1, 1], "weight_shape": [1, 1, 1], "bias": false, "stride": [1], "padding": [0], '
               '"output_padding": [1], "dilation": [2], "groups": 1, "dtype": "float64", "value_kind": "special", '
               '"seed": 0}')
    assert suites_main(["repro", "--impl", "zero-insertion", "--check", "special-values", "--problem", problem]) == 1
    printed = capsys.readouterr().out
    assert "got nan where it gives 0" in printed
    assert "weight, shape (1, 1, 1):\ntensor([[[-inf]]]" in printed and "not finite at [[0, 0, 0]]" in printed
    assert "expected output (the definition), shape (1, 1, 2)" in printed
