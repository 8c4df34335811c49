"""The gate's Hypothesis settings (``--convt-profile ci|dev|soak|replay|fuzz|scale``), the shared example
database and a campaign's settings. They are applied to the gate's own tests only: no profile is
registered or loaded process-wide, so a user's other tests keep theirs."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from .options import PROFILE_NAMES

_SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large]
PROFILES = {  # ci: the gate, derandomized; dev: local and random; soak: long; replay: the database only
    "ci": dict(derandomize=True, max_examples=30, database=None),
    "dev": dict(max_examples=60),
    "soak": dict(max_examples=int(os.environ.get("CONVT_SOAK_EXAMPLES", "400")), database=None),
    "replay": dict(phases=[Phase.explicit, Phase.reuse, Phase.shrink]),
    "fuzz": dict(max_examples=5_000),
    "scale": dict(max_examples=60, database=None),  # with the scale caps (limits.SCALE_CAPS): nightly
}
assert tuple(PROFILES) == PROFILE_NAMES  # the option's choices, named where no Hypothesis import is paid


def profile_settings(name: str) -> settings:
    """One of the gate's profiles, on Hypothesis' own defaults (never on a profile the user loaded)."""
    return settings(settings.get_profile("default"), deadline=None, print_blob=True,
                    suppress_health_check=_SLOW_CHECKS, **PROFILES[name])


def gate_settings(config: pytest.Config) -> settings:
    """The settings of the gate's tests: the profile, then --example-db and a campaign's settings."""
    name = "fuzz" if config.getoption("fuzz_seconds") and config.getoption("convt_profile") == "ci" \
        else config.getoption("convt_profile")
    changes = {}
    if name == "fuzz":
        examples_dir = config.invocation_params.dir / ".hypothesis" / "examples"
        changes["database"] = DirectoryBasedExampleDatabase(str(examples_dir))
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
        changes.update(max_examples=10**9, derandomize=False)  # the clock, not a count, ends a campaign
    return settings(profile_settings(name), **changes)


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
