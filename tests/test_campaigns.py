"""Fuzz campaigns: on time, clean on Ctrl-C, contained crashes and hangs, disjoint shards that combine,
an example database shared through a real Redis server, and a gate process whose long-lived objects
stay out of the garbage collector's way."""

from __future__ import annotations

import gc
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from convt_conformance import impls
from convt_conformance.cli import main as suites_main
from convt_conformance.reports.expectations import Rule
from convt_conformance.reports.records import read_report
from convt_conformance.suites import containment, verdicts
from convt_conformance.suites.campaign import Progress
from convt_conformance.suites.containment import ADAPTIVE_FLOOR, ContainedCall, _products
from convt_conformance.suites.plugin.parametrize import _for_case
from convt_conformance.suites.run import RUN_KEY, Run

from .conftest import PLANTED, ROOT

CRASHING = str(PLANTED / "crashing.py")
BUGS = str(PLANTED / "fault_classes.py")
ORACLE_BUGS = str(PLANTED / "oracle_bugs.py")


@pytest.mark.slow
def test_a_campaign_ends_on_time_and_writes_the_reports(tmp_path):
    out = tmp_path / "out"
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "convt_conformance", "fuzz", "--seconds", "20", "--workers", "2",
                           "--impl", "naive", "--impl", "im2col", "--report-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    session = float(re.search(r" in ([0-9.]+)s", done.stdout).group(1))  # pytest's own clock: after imports
    # Start-up (two workers importing torch) and the reports count too, and more so on a loaded machine; a
    # campaign that ignored the clock would run 5,000 examples per test, for many minutes.
    assert session < 20 + 60, f"a 20 s campaign's session took {session:.1f} s"
    assert elapsed < 20 + 120, f"a 20 s campaign took {elapsed:.0f} s with process start"
    report = read_report(out / "report.json")
    assert sum(row["examples"] for row in report["summary"]["table"]) > 0  # (none would have failed the run)
    assert (out / "report.html").exists() and (out / "report.md").exists()


def test_ctrl_c_ends_a_campaign_cleanly_with_its_reports(tmp_path):
    out = tmp_path / "out"
    # As at a terminal: a CI job or a background shell may start us with SIGINT ignored, which a child
    # would inherit (and Python then installs no KeyboardInterrupt handler).
    process = subprocess.Popen([sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "-n", "0",
                                "--fuzz-seconds", "300", "--impl", "naive", "--report-dir", str(out)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    progress = out / "progress-main.json"  # written every 2 s once examples are running
    deadline = time.monotonic() + 240
    while not progress.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
    assert progress.exists(), "the campaign never started"
    pressed = time.monotonic()
    process.send_signal(signal.SIGINT)  # once, as a user would
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("one Ctrl-C did not end the campaign within 120 s")
    # The reports are written after the interrupt (matplotlib included): a few seconds, more under load.
    assert time.monotonic() - pressed < 30, f"one Ctrl-C took {time.monotonic() - pressed:.0f} s to end the run"
    assert process.returncode == 2, output[-2000:]  # pytest's "interrupted"
    report = read_report(out / "report.json")
    assert sum(row["examples"] for row in report["summary"]["table"]) > 0


def test_a_finding_cut_off_while_shrinking_fails_the_campaign_with_a_report(tmp_path, gate):
    out = tmp_path / "out"
    run = gate("--fuzz-seconds", "5", "--impl-module", str(PLANTED / "slow.py"), "--impl", "slow-wrong-shape",
               "--contain", "none", "-k", "test_shape", "--report-dir", str(out))
    assert run.returncode == 1, run.output[-3000:]
    report = read_report(out / "report.json")
    found = [d for d in report["discrepancies"] if d["status"] == "unexpected"]
    assert found and all(d["impl"] == "slow-wrong-shape" and d["check"] == "shape" for d in found)
    assert any("not minimized" in d["summary"] for d in found), [d["summary"] for d in found]


def test_the_progress_line_shows_budget_rate_discrepancies_and_regions():
    snapshot = {"examples": [["naive", "bound", 90], ["im2col", "exact", 10]], "failed": [["im2col", "exact", 1]],
                "regions": {"groups>1": 40, "3d": 5, "batch 0": 1, "unbatched": 7}}
    line = Progress(60, lambda: snapshot).line()
    assert line.startswith("fuzz 0:00:00/0:01:00 | 100 examples") and "im2col 1" in line
    assert "groups>1 40" in line and "unbatched 7" in line and "batch 0" not in line


@pytest.mark.slow
def test_crashes_and_hangs_become_findings_and_spare_the_rest(tmp_path, gate, capsys):
    out = tmp_path / "out"
    run = gate("--impl-module", CRASHING, "--impl", "segfault-on-groups", "--impl", "hang-on-large-stride",
               "--impl", "exits-cleanly-on-dilation", "--impl", "naive", "--dtype", "float32", "--call-timeout", "1",
               "--report-dir", str(out), "-k", "test_shape")
    assert run.returncode == 1
    report = read_report(out / "report.json")
    found = {(d["impl"], d["check"]) for d in report["discrepancies"] if d["status"] == "unexpected"}
    assert ("segfault-on-groups", "crash") in found and ("hang-on-large-stride", "timeout") in found
    crash = next(d for d in report["discrepancies"] if d["impl"] == "segfault-on-groups")
    assert "SIGSEGV" in crash["summary"] and crash["problem"]["groups"] > 1
    assert "segfault-on-groups: bad offset for group" in crash["details"]["worker output"]  # its last words
    clean_exit = next(d for d in report["discrepancies"] if d["impl"] == "exits-cleanly-on-dilation")
    assert clean_exit["check"] == "crash" and "exited with status 0 during the call" in clean_exit["summary"]
    # The record reruns as it was found: contained, so the crash is reported, not suffered.
    number = report["discrepancies"].index(crash) + 1
    assert suites_main(["repro", "--record", str(out / "report.json"), "--index", str(number)]) == 1
    assert "reproduced: crash" in capsys.readouterr().out
    naive_rows = [row for row in report["summary"]["table"] if row["impl"] == "naive"]
    assert naive_rows and all(row["failed"] == 0 and row["examples"] >= 30 for row in naive_rows)


def test_shrinking_a_hang_is_capped_and_the_hang_still_reported(tmp_path, gate):
    out = tmp_path / "out"
    started = time.monotonic()
    run = gate("--impl-module", CRASHING, "--impl", "hang-on-large-stride", "--dtype", "float32", "--call-timeout",
               "3", "--hang-shrink-seconds", "4", "--report-dir", str(out), "-k", "test_shape and not test_replay")
    took = time.monotonic() - started
    assert run.returncode == 1 and run.failed("test_shape"), run.output[-3000:]
    (hang,) = [d for d in read_report(out / "report.json")["discrepancies"] if d["status"] == "unexpected"]
    assert hang["check"] == "timeout" and max(hang["problem"]["stride"]) > 2
    # one full limit to find it, then at most the cap (plus the call running when the cap passed) and the
    # run's own start and end; uncapped, shrinking goes on through dozens of 3 s timeouts
    assert took < 60, took
    assert "not minimized: shrinking a hang stopped after 4 s" in hang["summary"] or "within 3 s" in hang["summary"]


def test_the_per_call_limit_adapts_to_the_problem_and_the_observed_speed():
    call = ContainedCall("plugin", [], timeout=60)
    assert call.limit(10) == 60  # nothing answered yet: a first call may import or compile
    call.warm = True
    assert call.limit(10) == 60  # only the first (cold) answer: nothing to predict from
    # answered warm: at worst 0.02 s, and 0.01 s for its largest problem of 10,000 products
    call.warm_answers, call.slowest_warm, call.largest = 5, 0.02, (10_000, 0.01)
    assert call.limit(1_000) == ADAPTIVE_FLOOR  # a small problem: found hanging after the floor
    assert call.limit(1_000_000) == pytest.approx(50 * 0.01 * 100)  # 100x the largest: 50x its scaled time
    assert call.limit(10**9) == 60  # never past --call-timeout
    call.slowest_warm = call.slowest = 0.5  # a slow answer (a compilation, say) raises every limit
    assert call.limit(1_000) == 25
    call.shrinking_a_hang = True
    assert call.limit(10**9) == 10  # shrinking: the short limit, 20x the slowest answer
    x, w = torch.zeros(2, 3, 5), torch.zeros(3, 4, 2)
    assert _products((x, w, None)) == 30 * 8  # each input element meets 4 output channels x 2 taps
    assert _products(((x, w, None), {}, torch.zeros(2, 4, 6))) == 30 * 8  # a gradient procedure's arguments


SLOW_START = """
import multiprocessing, time
from pathlib import Path
from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose as naive

marker = Path(__file__).with_suffix(".started")
if multiprocessing.parent_process() is not None and not marker.exists():  # the first worker only
    marker.touch()
    time.sleep(3600)
register("first-start-hangs", dtypes=("float32",))(lambda *args, **kwargs: naive(*args, **kwargs))
"""


def test_a_worker_that_does_not_start_is_started_again(tmp_path, monkeypatch):
    plugin = tmp_path / "first_start_hangs.py"
    plugin.write_text(SLOW_START)
    impls.load_plugin(str(plugin))
    monkeypatch.setattr(containment, "START_TIMEOUT", 3.0)
    monkeypatch.setattr(containment, "BOOT_TIMEOUT", 1.0)  # loading plugins is not held to it
    boxed = containment.contained(impls.get("first-start-hangs"), [str(plugin)])
    x, w = torch.ones(1, 1, 2), torch.ones(1, 1, 1)
    try:
        started = time.monotonic()
        assert torch.equal(boxed.fn(x, w), x)  # answered by the second worker, not reported as a crash
        assert time.monotonic() - started >= 3
    finally:
        boxed.fn.close()


def _never_begins(connection, *args) -> None:
    """A worker stuck before its first message, as a child that deadlocked right after the fork is."""
    time.sleep(3600)


def test_a_worker_that_never_begins_is_replaced_after_the_boot_limit_not_the_start_limit(monkeypatch):
    monkeypatch.setattr(containment, "_serve", _never_begins)
    monkeypatch.setattr(containment, "BOOT_TIMEOUT", 0.5)
    call = containment.ContainedCall("naive", [])
    started = time.monotonic()
    with pytest.raises(containment.WorkerUnavailable, match=r"no worker process could be started \(3 attempts"):
        call(torch.ones(1, 1, 2), torch.ones(1, 1, 1))
    assert time.monotonic() - started < containment.START_TIMEOUT / 4
    assert call.process is None  # every stuck child was killed


def test_several_contained_calls_share_one_round_trip():
    naive = impls.get("naive")
    boxed = containment.contained(naive, [])
    x, w = torch.randn(1, 2, 3), torch.randn(2, 1, 2)
    try:
        first, second = boxed.fn.each([((x, w), {}), ((x, w), {"stride": 2})])
        assert torch.equal(first, naive.fn(x, w)) and torch.equal(second, naive.fn(x, w, stride=2))
        with pytest.raises(containment.RaisedInWorker, match="stride"):  # one refusal ends them all
            boxed.fn.each([((x, w), {}), ((x, w), {"stride": 0})])
    finally:
        boxed.fn.close()


def test_calls_that_may_each_be_refused_share_one_round_trip_and_keep_every_answer():
    naive = impls.get("naive")
    boxed = containment.contained(naive, [])
    x, w = torch.randn(1, 2, 3), torch.randn(2, 1, 2)
    try:
        boxed.fn(x, w)  # warm: each round trip from here on counts as one warm answer
        trips = boxed.fn.warm_answers
        first, refused, third = boxed.fn.attempts([((x, w), {}), ((x, w), {"stride": 0}), ((x, w), {"stride": 2})])
        assert boxed.fn.warm_answers == trips + 1
    finally:
        boxed.fn.close()
    assert torch.equal(first, naive.fn(x, w)) and torch.equal(third, naive.fn(x, w, stride=2))
    assert isinstance(refused, containment.RaisedInWorker) and "stride" in str(refused)


def test_calls_made_together_keep_nothing_when_one_crashes_so_the_crash_is_found_on_its_own():
    impls.load_plugin(CRASHING)
    boxed = containment.contained(impls.get("segfault-on-groups"), [CRASHING])
    x, w = torch.randn(1, 2, 3), torch.randn(2, 1, 2)
    try:
        assert boxed.fn.attempts([((x, w), {}), ((x, w), {"groups": 2}), ((x, w), {"stride": 0})]) is None
        assert torch.equal(boxed.fn(x, w), impls.get("naive").fn(x, w))  # a new worker answers the others
        with pytest.raises(containment.Crashed, match="SIGSEGV"):
            boxed.fn(x, w, groups=2)
    finally:
        boxed.fn.close()


def test_a_contained_result_without_data_keeps_its_shape_dtype_and_strides():
    fake = impls.get("torch-fake")  # a FakeTensor: its storage is on the meta device, it has no bytes to send
    boxed = containment.contained(fake, [])
    x, w = torch.randn(2, 3, 4), torch.randn(3, 2, 3)
    try:
        got = boxed.fn(x, w, None, stride=2)
    finally:
        boxed.fn.close()
    expected = fake.fn(x, w, None, stride=2)
    assert (got.shape, got.dtype, got.stride(), got.device) == (
        expected.shape, expected.dtype, expected.stride(), expected.device)


def test_shards_are_disjoint_and_their_reports_combine(tmp_path, gate):
    def collected(shard):
        run = gate("--collect-only", "--impl", "naive", "--shard", shard)
        return {line for line in run.output.splitlines() if "::" in line}

    first, second, whole = collected("1/2"), collected("2/2"), collected("1/1")
    assert first and second and not first & second and first | second == whole
    outs = [tmp_path / "a", tmp_path / "b"]
    for shard, out in zip(("1/2", "2/2"), outs):
        gate("--impl", "naive", "--shard", shard, "--report-dir", str(out), "-k", "test_shape or test_exact")
    combined = tmp_path / "combined"
    done = subprocess.run([sys.executable, "-m", "convt_conformance", "report", "combine", str(combined),
                           *(str(out / "report.json") for out in outs)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    total = lambda report: sum(row["examples"] for row in report["summary"]["table"])  # noqa: E731
    assert total(read_report(combined / "report.json")) == sum(total(read_report(o / "report.json")) for o in outs)


def test_a_bad_shard_or_database_is_one_clear_line(gate):
    for args, message in ((("--shard", "3/2"), "--shard '3/2'"), (("--shard", "x"), "expected I/N"),
                          (("--example-db", "redis://127.0.0.1:9/0"), "cannot reach the Redis server")):
        run = gate(*args)
        assert run.returncode != 0 and message in run.output and "Traceback" not in run.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CONVT_REQUIRE_REDIS"):
            pytest.fail("redis-server is required here (CONVT_REQUIRE_REDIS) but not installed")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis")
    port = _free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def test_a_failure_found_by_one_runner_is_replayed_by_another(redis_url, gate):
    # A random search may miss a rare bug, so the finder hunts one that most problems expose (undeclared
    # TF32 rounding): what is under test here is the shared database, not the search.
    common = ["--impl-module", ORACLE_BUGS, "--impl", "bug-bound-tf32", "--dtype", "float32", "-k", "test_bound",
              "--contain", "none"]
    finder = gate(*common, "--convt-profile", "dev", "--example-db", f"{redis_url}/0")
    assert finder.failed("test_bound"), finder.output[-3000:]
    # Another machine, generating nothing of its own: it fails only by replaying what the first stored.
    replayer = gate(*common, "--convt-profile", "replay", "--example-db", f"{redis_url}/0")
    assert replayer.failed("test_bound"), replayer.output[-3000:]
    fresh = gate(*common, "--convt-profile", "replay", "--example-db", f"{redis_url}/1")
    assert fresh.returncode == 0, fresh.output[-3000:]


class _Options:
    """Just what suites.plugin.parametrize reads of a pytest config: the run and two options."""

    def __init__(self, run, contain: str) -> None:
        self.stash = {RUN_KEY: run}
        self.contain = contain

    def getoption(self, name: str):
        return {"contain": self.contain, "call_timeout": 60.0}[name]


def test_a_built_in_runs_contained_in_the_cases_a_rule_declares_it_crashes():
    naive = impls.get("naive")
    crashes = Rule(id="naive-bf16-crash", impl=("naive",), check=("crash",), reason="declared", dtype=("bfloat16",))
    run = Run(rules=[crashes], implementations=[naive])
    twin = _for_case(_Options(run, "plugins"), naive, "cpu", "bfloat16")
    assert isinstance(twin.fn, ContainedCall) and twin.name == "naive"
    assert _for_case(_Options(run, "plugins"), naive, "cpu", "bfloat16") is twin  # one worker for its cases
    assert _for_case(_Options(run, "plugins"), naive, "cpu", "float32") is naive  # no crash declared there
    assert _for_case(_Options(run, "none"), naive, "cpu", "bfloat16") is naive  # --contain none is obeyed


def test_the_gate_freezes_its_long_lived_objects_and_hands_them_back(gate, monkeypatch):
    """The objects alive once the tests are collected (torch's among them) are frozen out of the garbage
    collector's way while the examples run, since a full pass over them stalled an example for 0.1-0.2 s;
    they are handed back when the session ends, since a process that runs several sessions must not
    keep each one's objects for good."""
    frozen_while_checking = []
    check = verdicts.run_on

    def recording(*args):
        frozen_while_checking.append(gc.get_freeze_count())
        return check(*args)

    monkeypatch.setattr(verdicts, "run_on", recording)
    run = gate("--impl", "naive", "--dtype", "float64", "-k", "test_shape and not replay", "--examples", "3")
    assert run.returncode == 0, run.output[-2000:]
    assert frozen_while_checking and min(frozen_while_checking) > 10_000  # torch alone is far more
    assert gc.get_freeze_count() == 0


def test_a_restarted_workers_first_call_keeps_the_speed_earlier_workers_showed():
    call = ContainedCall("plugin", [], timeout=60)
    call.warm_answers, call.slowest_warm, call.largest = 5, 0.02, (10_000, 0.01)
    call.first_answers, call.slowest_first = 1, 0.1  # a new worker's first answer took 0.1 s (its imports too)
    call.warm = False  # the worker was restarted after a hang
    assert call.limit(1_000) == ADAPTIVE_FLOOR  # not the full 60 s again
    call.slowest_first = 0.5
    assert call.limit(1_000) == 25  # 50x the slowest start-up seen


@pytest.mark.slow
def test_a_plugin_that_hangs_on_many_problems_pays_the_full_limit_once(monkeypatch):
    """Replaying several problems that hang (as a corpus replay does) costs the full per-call limit once,
    then the adaptive one: each hang restarts the worker, and the restart keeps what was learned."""
    monkeypatch.setattr(containment, "ADAPTIVE_FLOOR", 1.0)
    impls.load_plugin(CRASHING)
    boxed = containment.contained(impls.get("hang-on-large-stride"), [CRASHING], timeout=20)
    x, w = torch.ones(1, 1, 3), torch.ones(1, 1, 1)
    try:
        boxed.fn(x, w)
        boxed.fn(x, w, stride=2)  # answered: the worker is warm
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(containment.TimedOut):
                boxed.fn(x, w, stride=3)
        assert time.monotonic() - started < 20, "a restarted worker got the full limit again"
    finally:
        boxed.fn.close()


def test_a_campaign_that_checks_no_example_fails_with_one_line(tmp_path, gate):
    run = gate("--fuzz-seconds", "0.001", "--impl", "naive", "-k", "test_shape", "--report-dir", str(tmp_path / "out"))
    assert run.returncode == 1, run.output[-3000:]
    assert "no example was checked" in run.output and "Traceback" not in run.output


def test_a_gate_whose_tests_are_all_skipped_fails_with_one_line(tmp_path, gate):
    run = gate("--impl", "torch-meta", "-k", "test_exact", "--report-dir", str(tmp_path / "out"))
    assert run.returncode == 1, run.output[-3000:]
    assert "no example was checked" in run.output and "(every test was skipped, deselected or stopped" in run.output


UNSTARTABLE = str(ROOT / "tests" / "planted" / "unstartable.py")


@pytest.mark.slow
@pytest.mark.parametrize("impl, why", [
    ("dies-on-import-in-its-worker", "its last output: unstartable: libexample.so: cannot load here"),
    ("dies-in-its-preload", "could not start a process"),
])
def test_a_worker_that_cannot_start_is_one_line_and_no_finding(impl, why, tmp_path):
    """A separate process: the fork server (and the preloads it imports) is one per process."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "convt_conformance", "gate", "--impl-module", UNSTARTABLE,
                           "--impl", impl, "--dtype", "float32", "-n", "0", "-k", "test_shape or test_exact",
                           "--report-dir", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    faults = [line for line in done.stdout.splitlines() if line.startswith("harness fault, not a finding:")]
    assert len(faults) == 1 and impl in faults[0] and why in faults[0], done.stdout[-3000:]
    assert "Traceback" not in done.stdout and "skipped" in done.stdout  # its other test: skipped, not failed
    assert not (out / "report.json").exists() or not read_report(out / "report.json")["discrepancies"]
