"""Known-discrepancy rules: matching, stale detection, and clear errors for malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.expectations import DEFAULT_PATH, ExpectationsError, load_rules, match, stale

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
