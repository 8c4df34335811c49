"""Hypothesis profiles (``--hypothesis-profile ci|dev|soak|replay|fuzz``), the shared example database
and the settings of a fuzz campaign. The profile a session loads is put back when it ends."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

_SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large]
PROFILES = {  # ci: the gate, derandomized; dev: local and random; soak: long; replay: the database only

    "ci": dict(derandomize=True, max_examples=30, database=None),
    "dev": dict(max_examples=60),
    "soak": dict(max_examples=int(os.environ.get("CONVT_SOAK_EXAMPLES", "400")), database=None),
    "replay": dict(phases=[Phase.explicit, Phase.reuse, Phase.shrink]),
    "fuzz": dict(max_examples=5_000, database=DirectoryBasedExampleDatabase(".hypothesis/examples")),
}
for _name, _changes in PROFILES.items():
    settings.register_profile(_name, deadline=None, print_blob=True, suppress_health_check=_SLOW_CHECKS, **_changes)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Load the default profile before Hypothesis loads ``--hypothesis-profile`` (which overrides it)."""
    before = settings.get_current_profile_name()
    settings.load_profile(os.environ.get("CONVT_PROFILE", "ci"))
    config.add_cleanup(lambda: settings.load_profile(before))


def apply_options(config: pytest.Config) -> None:
    """Apply --example-db and a campaign's settings on top of the loaded profile (once Hypothesis has
    loaded --hypothesis-profile)."""
    changes = {}
    url = config.getoption("example_db")
    if url:
        changes["database"] = _example_database(url)
    examples = config.getoption("examples")
    if examples is not None:
        if examples < 1 or config.getoption("fuzz_seconds"):
            raise pytest.UsageError(f"--examples {examples}: give a count of at least 1, and not with "
                                    "--fuzz-seconds (a campaign's clock decides its count)")
        changes["max_examples"] = examples
    if config.getoption("fuzz_seconds"):
        if config.getoption("hypothesis_profile", None) is None:
            settings.load_profile("fuzz")
        changes.update(max_examples=10**9, derandomize=False)  # the clock, not a count, ends a campaign
    if changes:
        settings.register_profile("convt-active", settings(settings.default, **changes))
        settings.load_profile("convt-active")


def _example_database(url: str):
    if url.startswith("redis://"):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase

            client = redis.Redis.from_url(url)
            client.ping()
        except ImportError:
            raise pytest.UsageError(f"--example-db {url}: needs the redis package (pip install redis)") from None
        except Exception as exc:  # noqa: BLE001  (any connection failure: one line)
            raise pytest.UsageError(f"--example-db {url}: cannot reach the Redis server ({exc})") from None
        return RedisExampleDatabase(client)
    return DirectoryBasedExampleDatabase(url)


