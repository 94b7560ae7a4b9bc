"""A setting out of its range stops the process at start with a message naming it, rather than
failing later on every use (a grace period over 365 days made every scheduled deletion without
--grace-days a `grace_invalid` refusal)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _start(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "foundry.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


SENTINEL = {"FOUNDRY_REDIS_SENTINELS": "127.0.0.1:26379"}


@pytest.mark.parametrize(
    ("name", "value", "beside"),
    [
        ("FOUNDRY_TENANT_DELETION_GRACE_DAYS", "400", {}),
        ("FOUNDRY_TENANT_DELETION_GRACE_DAYS", "-1", {}),
        ("FOUNDRY_RATELIMIT_PLAN_SCALE", "0", {}),
        ("FOUNDRY_BACKUP_TIMEOUT_SECONDS", "0", {}),
        ("FOUNDRY_REDIS_SENTINELS", "127.0.0.1", {}),
        # Sentinel master names are case-sensitive, and django-redis would read it lowercased.
        ("FOUNDRY_REDIS_SENTINEL_MASTER", "Foundry", SENTINEL),
        # TLS through Sentinel is not supported: refused, never used in clear.
        ("FOUNDRY_REDIS_SENTINELS", "127.0.0.1:26379", {"REDIS_URL": "rediss://:s@redis.internal:6380/0"}),
        ("FOUNDRY_REDIS_SENTINELS", "127.0.0.1:26379", {"FOUNDRY_CACHE_URL": "rediss://redis.internal:6380/1"}),
        ("FOUNDRY_TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal", {}),
        # A run slot's lease shorter than its lock: a stalled worker would run past the workspace's limit.
        ("FOUNDRY_RUN_SLOT_SECONDS", "10", {"FOUNDRY_RUN_LOCK_SECONDS": "30"}),
    ],
)
def test_a_setting_out_of_range_stops_the_process_naming_it(name, value, beside):
    done = _start(**{**beside, name: value})
    assert done.returncode != 0
    assert f"ImproperlyConfigured: {name}" in done.stderr, done.stderr[-500:]


def test_the_bounds_themselves_are_accepted():
    done = _start(FOUNDRY_TENANT_DELETION_GRACE_DAYS="365")
    assert done.returncode == 0, done.stderr[-500:]
    assert _start(FOUNDRY_TENANT_DELETION_GRACE_DAYS="0").returncode == 0


def test_a_run_slot_as_long_as_the_run_lock_is_accepted():
    done = _start(FOUNDRY_RUN_SLOT_SECONDS="30", FOUNDRY_RUN_LOCK_SECONDS="30")
    assert done.returncode == 0, done.stderr[-500:]
