"""The seed corpus: every entry loads, and runs every check it names in every dtype it is replayed in
(a stored bug that is silently skipped proves nothing)."""

from __future__ import annotations

import json

from convt_conformance.suites.corpus import SEED_CORPUS, gaps, load_corpus


def test_every_seed_entry_loads_and_runs_every_check_it_names():
    entries, problems = load_corpus([SEED_CORPUS])
    assert len(entries) == len(list(SEED_CORPUS.glob("*.json"))) and not problems
    assert gaps(entries) == []


def test_an_entry_that_could_never_run_its_check_is_named(tmp_path):
    # An empty batch has no values to compare, whatever the seed.
    entry = {"checks": ["exact"], "problem": {
        "input_shape": [0, 1, 3], "weight_shape": [1, 1, 2], "bias": False, "stride": [1], "padding": [0],
        "output_padding": [0], "dilation": [1], "groups": 1, "dtype": "float32", "value_kind": "int", "seed": 0}}
    (tmp_path / "empty-batch-exact.json").write_text(json.dumps(entry))
    entries, problems = load_corpus([tmp_path])
    assert not problems and len(entries) == 1
    lines = gaps(entries)
    assert lines and all("empty-batch-exact.json: exact never runs in" in line for line in lines)
