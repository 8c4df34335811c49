"""Known-discrepancy rules: matching, stale detection, and clear errors for malformed files."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from convt_conformance.reports.expectations import (
    BREADTH_LIMIT,
    DEFAULT_PATH,
    ExpectationsError,
    in_force,
    load_all,
    load_rules,
    match,
    stale,
)
from convt_conformance.reports.records import read_report

from .conftest import PLANTED

RULES = '''
[[expected]]
id = "zi-nan"
impl = "zero-insertion"
check = "special-values"
when = { nonfinite_in = "weight", dims = [2, 3] }
reason = "spreads"
'''


def rules_from(tmp_path: Path, text: str):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return load_rules(path)


def test_a_rule_matches_on_implementation_check_and_predicates(tmp_path):
    rules = rules_from(tmp_path, RULES)
    facts = {"nonfinite_in": ["input", "weight"], "dims": 2}
    assert match(rules, "zero-insertion", "special-values", "cpu", "float32", facts).id == "zi-nan"
    assert match(rules, "zero-insertion", "special-values", "cpu", "float32", {**facts, "dims": 1}) is None
    only_bias = {**facts, "nonfinite_in": ["bias"]}
    assert match(rules, "zero-insertion", "special-values", "cpu", "float32", only_bias) is None
    assert match(rules, "naive", "special-values", "cpu", "float32", facts) is None
    assert match(rules, "zero-insertion", "bound", "cpu", "float32", facts) is None


def test_rules_that_matched_nothing_are_stale_only_when_exercised(tmp_path):
    rules = rules_from(tmp_path, RULES)
    assert [r.id for r in stale(rules, set(), {"zero-insertion"}, {"special-values"})] == ["zi-nan"]
    assert stale(rules, {"zi-nan"}, {"zero-insertion"}, {"special-values"}) == []
    assert stale(rules, set(), {"naive"}, {"special-values"}) == []


@pytest.mark.parametrize("text, message", [
    ("[[expected]\nid=", "not valid TOML"),
    ("expected = 3", "array of tables"),
    ('[[expected]]\nid = "a"\nimpl = "x"\ncheck = "y"', "missing keys ['reason']"),
    ('[[expected]]\nid = "a"\nimpl = "x"\ncheck = "y"\nreason = "r"\ncolour = 1', "unknown keys ['colour']"),
    ('[[expected]]\nid = "a"\nimpl = 3\ncheck = "y"\nreason = "r"', "'impl' must be a string"),
    (RULES + RULES, "duplicate id 'zi-nan'"),
])
def test_a_malformed_file_gives_one_line_naming_it(tmp_path, text, message):
    with pytest.raises(ExpectationsError) as raised:
        rules_from(tmp_path, text)
    assert message in str(raised.value) and "rules.toml" in str(raised.value)


def test_the_committed_rules_load_and_each_has_a_reason():
    rules = load_rules(DEFAULT_PATH)
    assert rules and all(rule.reason for rule in rules)


def test_a_malformed_expectations_file_stops_the_gate_with_one_line(tmp_path, gate):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[expected]\n")
    run = gate("--expectations", str(bad))
    assert run.returncode != 0 and "bad.toml: not valid TOML" in run.output and "Traceback" not in run.output


def test_a_users_file_adds_to_the_shipped_rules_and_an_id_twice_names_both_files(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text(RULES)
    rules = load_all([mine])
    assert rules[-1].id == "zi-nan" and {r.id for r in load_rules(DEFAULT_PATH)} < {r.id for r in rules}
    assert [r.id for r in load_all([mine], shipped=False)] == ["zi-nan"]
    again = tmp_path / "again.toml"
    again.write_text(RULES)
    with pytest.raises(ExpectationsError, match=r"again.toml: rule id 'zi-nan' is already defined in .*mine.toml"):
        load_all([mine, again])


def test_predicates_compare_numbers_and_per_axis_values(tmp_path):
    rules = rules_from(tmp_path, '''
[[expected]]
id = "padded-3d"
impl = "x"
check = "exact"
dtype = ["float16", "bfloat16"]
when = { dims = 3, padding = "> 0", groups = [">= 2"] }
reason = "r"
''')
    facts = {"dims": 3, "padding": [0, 2, 0], "groups": 2}
    assert match(rules, "x", "exact", "cpu", "bfloat16", facts).id == "padded-3d"
    assert match(rules, "x", "exact", "cpu", "float32", facts) is None  # dtype set
    assert match(rules, "x", "exact", "cpu", "float16", {**facts, "padding": [0, 0, 0]}) is None
    assert match(rules, "x", "exact", "cpu", "float16", {**facts, "groups": 1}) is None
    assert match(rules, "x", "exact", "cpu", "float16", {**facts, "dims": 2}) is None


def test_a_users_rule_declares_a_finding_while_the_shipped_rules_stay(tmp_path, gate):
    mine = tmp_path / "mine.toml"
    mine.write_text('''
[[expected]]
id = "my-k1-fast-path"
impl = "bug-b12-k1-fast-path"
check = "exact"
when = { kernel_size = 1, stride = "> 1" }
reason = "a fast path we know about"
''')
    run = gate("--impl-module", str(PLANTED / "fault_classes.py"), "--impl", "bug-b12-k1-fast-path", "--dtype",
               "float32", "-k", "test_exact", "--contain", "none", "--expectations", str(mine),
               "--examples", "100")  # a 1x1 kernel on every axis: not on every sequence of 30 (test_kill_rate)
    assert run.returncode == 0, run.output[-3000:]
    assert re.search(r"^ +[1-9][0-9]* matched .*my-k1-fast-path", run.output, re.M), run.output[-3000:]


def test_a_rule_about_other_machines_is_not_in_force_here(tmp_path):
    rules = rules_from(tmp_path, '''
[[expected]]
id = "half-on-onednn"
impl = "x"
check = "crash"
dtype = "float16"
machine = { float16_on_onednn = true }
reason = "r"

[[expected]]
id = "anywhere"
impl = "x"
check = "exact"
reason = "r"
''')
    assert [r.id for r in in_force(rules, {"float16_on_onednn": True})] == ["half-on-onednn", "anywhere"]
    assert [r.id for r in in_force(rules, {"float16_on_onednn": False})] == ["anywhere"]
    assert [r.id for r in in_force(rules, {})] == ["anywhere"]  # a fact the machine does not report


def test_a_machine_predicate_that_is_not_a_table_is_named(tmp_path):
    with pytest.raises(ExpectationsError, match="rule 1: 'machine' must be a table of predicates"):
        rules_from(tmp_path, '''
[[expected]]
id = "m"
impl = "x"
check = "crash"
machine = "avx512"
reason = "r"
''')


def test_the_shipped_half_type_onednn_rules_are_in_force_only_where_pytorch_takes_onednn_in_that_type():
    facts = {"float16": "float16_on_onednn", "bfloat16": "bfloat16_on_onednn"}
    half_type_onednn = [rule for rule in load_rules(DEFAULT_PATH)
                        if "onednn" in rule.id and rule.dtype and set(rule.dtype) <= set(facts)]
    assert {dtype for rule in half_type_onednn for dtype in rule.dtype} == set(facts)
    for rule in half_type_onednn:
        (dtype,) = rule.dtype
        assert rule.holds_on({facts[dtype]: True}), rule.id
        assert not rule.holds_on({facts[dtype]: False}), rule.id


FINGERPRINTED = '''
[[expected]]
id = "nan-through-zeros"
impl = "k"
check = ["special-values", "grad-bound"]
where = "padding > dilation * (kernel_size - 1)"
finding = { got = "nan", gradients = "input", ratio = "<= 20" }
reason = "r"
'''
CROPPING = {"padding": [0, 3], "dilation": [1, 1], "kernel_size": [3, 3]}  # the second axis crops a whole tap


def test_a_where_relation_holds_on_some_axis_with_every_fact_taken_at_that_axis(tmp_path):
    (rule,) = rules_from(tmp_path, FINGERPRINTED)
    assert rule.in_region(CROPPING)
    assert not rule.in_region({**CROPPING, "padding": [3, 0], "kernel_size": [5, 3]})  # no axis crops
    assert not rule.in_region({**CROPPING, "padding": None})  # a missing fact fails


def test_a_fingerprint_explains_a_finding_only_when_every_wrong_value_fits(tmp_path):
    (rule,) = rules_from(tmp_path, FINGERPRINTED)
    known = {"got": ["nan"], "gradients": ["input"], "ratio": 3.0}
    assert match([rule], "k", "grad-bound", "cpu", "float32", CROPPING, known) is rule
    for other_bug in ({**known, "got": ["nan", "zero"]},  # zeros besides the NaN: another bug
                      {**known, "gradients": ["input", "weight"]},  # the weight's gradient wrong too
                      {**known, "ratio": 21.0},  # past the cap
                      {"got": ["nan"], "gradients": ["input"]},  # no ratio to cap
                      {}):
        assert match([rule], "k", "grad-bound", "cpu", "float32", CROPPING, other_bug) is None, other_bug


@pytest.mark.parametrize("text, message", [
    ('[[expected]]\nid = "a"\nimpl = "x"\ncheck = "y"\nreason = "r"\nwhere = "__import__(1)"', "'where' expression"),
    ('[[expected]]\nid = "a"\nimpl = "x"\ncheck = "y"\nreason = "r"\nwhere = "padding >"', "'where' expression"),
    ('[[expected]]\nid = "a"\nimpl = "x"\ncheck = "y"\nreason = "r"\nfinding = { colour = 1 }', "unknown facets"),
])
def test_a_malformed_fingerprint_or_relation_gives_one_line(tmp_path, text, message):
    with pytest.raises(ExpectationsError, match=message):
        rules_from(tmp_path, text)


def test_a_rule_that_matched_nothing_is_fixed_only_where_its_bug_was_seen(tmp_path):
    (anywhere,) = rules_from(tmp_path, RULES)
    (machine_bound,) = rules_from(tmp_path, RULES.replace('reason', 'machine = { bfloat16_on_onednn = true }\n'
                                                          'seen_on = { onednn_isa = "avx512_core_amx" }\nreason'))
    assert anywhere.unreproduced_status({}) == "fixed"
    assert machine_bound.unreproduced_status({"onednn_isa": "avx512_core_amx"}) == "fixed"
    assert machine_bound.unreproduced_status({"onednn_isa": "avx512_core"}) == "not reproduced on this machine"


def test_the_shipped_float32_rule_still_excuses_pytorchs_own_nan_but_not_finite_zeros():
    """Its reproducer through the real oracle matches; a kernel giving 0 where the definition gives inf does not."""
    import torch
    import torch.nn.functional as F

    from convt_conformance.suites.oracles import check_special_values
    from convt_conformance.suites.problem import Problem
    from convt_conformance.suites.verdicts import facts_of

    (rule,) = [r for r in load_rules(DEFAULT_PATH) if r.id == "torch-onednn-float32-non-finite-through-zeros"]
    x, w = torch.ones(2, 1, 1), torch.tensor([[[float("inf"), 1.0, 1.0]]])
    expected = F.conv_transpose1d(x.double(), w.double(), stride=2)
    M_finite = F.conv_transpose1d(x.double().abs(), torch.nan_to_num(w.double(), posinf=0).abs(), stride=2)
    problem = Problem(input_shape=(2, 1, 1), weight_shape=(1, 1, 3), bias=False, stride=(2,), padding=(0,),
                      output_padding=(0,), groups=1, dilation=(1,), dtype="float32", value_kind="special")
    facts = {**facts_of(problem), "nonfinite_in": ["weight"]}
    with_nan = expected.clone()
    with_nan[..., 2] = float("nan")  # what oneDNN gives: [inf, 1, nan]
    zeros_for_inf = torch.where(torch.isinf(expected), 0.0, expected)
    for got, known in ((with_nan, True), (zeros_for_inf, False)):
        finding = check_special_values(got.float(), expected, M_finite, torch.float32)
        assert finding is not None
        assert rule.matches("torch-cpu-default", "special-values", "cpu", "float32", facts, finding.facets) is known


def _copy_of_shipped(rule_id: str, impls: list[str]) -> str:
    """A shipped rule as TOML, keyed on other implementations and in force on any machine."""
    entry = next(e for e in tomllib.loads(DEFAULT_PATH.read_text())["expected"] if e["id"] == rule_id)
    entry = {**entry, "id": f"copy-of-{rule_id}", "impl": impls}
    entry.pop("machine", None)
    entry.pop("seen_on", None)

    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)
    return "[[expected]]\n" + "".join(f"{key} = {value(v)}\n" for key, v in entry.items())


@pytest.mark.slow
@pytest.mark.parametrize("rule_id, test, same_bug, other_bug", [
    ("torch-onednn-float32-non-finite-through-zeros", "test_special_values", "rule-nan-where-inf",
     "rule-zero-where-inf"),
    ("torch-onednn-bf16-3d-channels-last-grad-input-zero", "test_grad_exact", "rule-grad-input-zero",
     "rule-grad-weight-doubled"),
])
def test_a_copy_of_a_shipped_rule_excuses_its_bug_and_not_another_in_its_region(rule_id, test, same_bug, other_bug,
                                                                                  tmp_path, gate):
    rules = tmp_path / "copies.toml"
    rules.write_text(_copy_of_shipped(rule_id, [same_bug, other_bug]))
    out = tmp_path / "out"
    run = gate("--impl-module", str(PLANTED / "under_rules.py"), "--impl", same_bug, "--impl", other_bug,
               "--expectations", str(rules), "-k", test, "--report-dir", str(out), "--contain", "none",
               "--examples", "100")
    records = read_report(out / "report.json")["discrepancies"]
    statuses = {(r["impl"], r["status"]) for r in records}
    assert (same_bug, "known") in statuses and (same_bug, "unexpected") not in statuses, run.output[-3000:]
    assert (other_bug, "unexpected") in statuses and run.returncode == 1, run.output[-3000:]


@pytest.mark.slow
def test_a_plugin_built_on_a_host_inherits_its_rules_and_one_without_the_ieee_claim_skips_special_values(
        tmp_path, gate):
    rules = tmp_path / "host.toml"
    rules.write_text(_copy_of_shipped("torch-onednn-float32-non-finite-through-zeros", ["rule-nan-where-inf"]))
    out = tmp_path / "out"
    run = gate("--impl-module", str(PLANTED / "under_rules.py"), "--impl", "rule-built-on-the-nan-kernel",
               "--impl", "rule-on-the-nan-kernel-undeclared", "--impl", "rule-no-ieee-claim",
               "-k", "test_special_values", "--expectations", str(rules), "--report-dir", str(out),
               "--contain", "none", "--examples", "100")
    records = read_report(out / "report.json")["discrepancies"]
    inherited = [r for r in records if r["impl"] == "rule-built-on-the-nan-kernel"]
    assert inherited and all(r["status"] == "known" and r["rule"]["inherited_from"] == "rule-nan-where-inf"
                             for r in inherited), run.output[-3000:]
    assert any(r["impl"] == "rule-on-the-nan-kernel-undeclared" and r["status"] == "unexpected" for r in records)
    assert not any(r["impl"] == "rule-no-ieee-claim" for r in records)
    assert "rule-no-ieee-claim: special-values not checked (it declares special_values=False" in run.output
    assert "inherited by rule-built-on-the-nan-kernel from rule-nan-where-inf" in run.output


def test_every_shipped_rule_is_narrow_or_says_why_it_is_broad():
    """Each rule's share of the problems drawn for what it names (benchmarks/rule_breadth.py measures it at
    more examples) stays under the limit, unless its ``broad`` says why."""
    from convt_conformance.suites.breadth import breadth

    too_broad = {}
    for rule in load_rules(DEFAULT_PATH):
        if rule.broad:
            continue
        inside, total = breadth(rule, examples=20)
        if total and inside / total > BREADTH_LIMIT:
            too_broad[rule.id] = f"{inside}/{total}"
    assert not too_broad, too_broad
