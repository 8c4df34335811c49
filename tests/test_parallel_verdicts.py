"""With the derandomized ci profile, pytest-xdist gives the same verdicts as a single process."""

from __future__ import annotations

import pytest

from .planted.catalog import MODULES


@pytest.mark.slow
def test_xdist_gives_the_same_verdicts_as_one_process(gate):
    args = ["--impl-module", MODULES[1], "--impl", "naive", "--impl", "bug-b9-groups-interleaved",
            "--impl", "bug-b5-dilated-extent", "--dtype", "float32", "-k", "test_shape or test_exact",
            "--contain", "none"]
    single = gate(*args)
    parallel = gate(*args, "-n", "2")
    assert single.failed_tests and single.failed_tests == parallel.failed_tests
    assert single.returncode == parallel.returncode == 1
