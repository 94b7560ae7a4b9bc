"""Test settings: the real settings, with fast password hashing and per-worker Redis databases
so parallel test workers (pytest-xdist) never see each other's cache or broker entries."""

import os
from pathlib import Path

from foundry.celery_signing import signing_keys_create

# Celery messages are signed in tests too. Without the keys bin/dev exports, every process of
# the run (xdist workers, and the Celery workers and servers they start) uses this one pair.
if not os.environ.get("FOUNDRY_CELERY_SIGNING_KEY"):
    _signing = signing_keys_create(Path(__file__).resolve().parents[1] / "test-artifacts" / "celery-signing")
    os.environ["FOUNDRY_CELERY_SIGNING_KEY"] = str(_signing.key)
    os.environ["FOUNDRY_CELERY_SIGNING_CERT"] = str(_signing.cert)

from foundry.settings import *  # noqa: F403
from foundry.settings import CACHES, FOUNDRY_REDIS_SENTINELS, REDIS_URL

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The same static files middleware, scanning the files once per process, not once per test client.
MIDDLEWARE = [
    "tests.static_files.ScannedOnceWhiteNoiseMiddleware"
    if entry == "whitenoise.middleware.WhiteNoiseMiddleware"
    else entry
    for entry in MIDDLEWARE  # noqa: F405
]

_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_redis_base = REDIS_URL.rsplit("/", 1)[0]
if not FOUNDRY_REDIS_SENTINELS:  # else a Redis of the test's own, behind its sentinel (test_redis_sentinel.py)
    CACHES["default"]["LOCATION"] = f"{_redis_base}/{2 + 2 * (_worker % 7)}"
    CELERY_BROKER_URL = f"{_redis_base}/{3 + 2 * (_worker % 7)}"
    CELERY_RESULT_BACKEND = CELERY_BROKER_URL
# Two test runs on one machine (say, two checkouts) each need their own test database.
if os.environ.get("FOUNDRY_TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["FOUNDRY_TEST_DB_NAME"]}  # noqa: F405
# Files (export archives) of the test run's own, never the development ones. Decided once, by
# the first process of the run (pytest), and handed down in the environment to the xdist
# workers and the servers and Celery workers tests start, whose own database name differs.
MEDIA_ROOT = os.environ.setdefault(
    "FOUNDRY_TEST_MEDIA_ROOT",
    str(
        Path(__file__).resolve().parents[1]
        / "test-artifacts"
        / "media"
        / os.environ.get("FOUNDRY_TEST_DB_NAME", "test_" + DATABASES["default"]["NAME"])  # noqa: F405
    ),
)
# Tests see status changes at once; a server measured as deployed (the noisy-neighbour test) sets it.
FOUNDRY_TENANT_ROUTE_TTL = float(os.environ.get("FOUNDRY_TEST_ROUTE_TTL", "0"))
# Tests probe /readyz again after stopping what it checks: each probe checks anew (probes arriving
# while one runs still share its answer; tests/foundry/test_readyz_shared.py sets the window).
FOUNDRY_READY_CACHE_SECONDS = 0.0
LOGGING["handlers"]["console"]["formatter"] = "text"  # noqa: F405

# A test-only table holding every filterable type, for the filtering property tests.
SHARED_APPS = [*SHARED_APPS, "tests.specimens"]  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS, "tests.specimens"]  # noqa: F405
# The suite makes many API calls per test in quick bursts: plans admit 1000 times their rate here.
# Operators' overrides are not scaled, so tests of limits set overrides (tests/api/test_ratelimit.py).
FOUNDRY_RATELIMIT_PLAN_SCALE = 1000.0
# An origin of a browser-based MCP client the deployment allows (tests/mcp/test_auth.py: CORS).
FOUNDRY_MCP_ALLOWED_ORIGINS = ["https://inspector.test"]
