"""Known-discrepancy rules: matching, stale detection, and clear errors for malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from convt_conformance.reports.expectations import (
    DEFAULT_PATH,
    ExpectationsError,
    in_force,
    load_all,
    load_rules,
    match,
    stale,
)

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
    assert "known discrepancy 'my-k1-fast-path' matched" in run.output, run.output[-3000:]


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
