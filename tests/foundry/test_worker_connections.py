"""A Celery worker keeps its database session from one task to the next, as a web process keeps
it from one request to the next (CONN_MAX_AGE): Celery's Django fixup would close it at every
task (settings: CELERY_DB_REUSE_MAX), and each run's task would start a PostgreSQL session of its
own. Whatever the workspace of the task before, the next task's session is its own workspace's."""

import json
import time
import uuid
from pathlib import Path

import pytest

from foundry.celery import app
from tests.conftest import tenant_user
from tests.foundry.test_celery_signing import worker_logging_to


def probe(queue: str, tenant, where: Path, *, fail: bool = False) -> dict:
    """Send the connection probe for `tenant` to the worker and wait for what it saw."""
    path = where / f"probe-{uuid.uuid4().hex[:8]}.json"
    app.send_task("tests.connection_probe", args=[tenant.schema_name, str(path)], kwargs={"fail": fail}, queue=queue)
    deadline = time.monotonic() + 30
    while not path.exists() or not path.read_text():
        if time.monotonic() > deadline:
            raise AssertionError("the probe task did not run")
        time.sleep(0.05)
    time.sleep(0.2 if fail else 0)  # the failed task's end, before the next task
    return json.loads(path.read_text())


def session_of(tenant) -> str:
    return f"{tenant.schema_name}, public"


@pytest.mark.parametrize("max_age", ["60", "0"])
def test_a_worker_keeps_its_database_session_across_tasks_of_different_workspaces(acme, globex, tmp_path, max_age):
    tenant_user(acme, f"owner@{acme.slug}.test")
    tenant_user(globex, f"owner@{globex.slug}.test")
    queue = f"connections-test-{uuid.uuid4().hex[:8]}"
    with worker_logging_to(queue, tmp_path / "worker.log", FOUNDRY_DB_CONN_MAX_AGE=max_age):
        seen = [
            probe(queue, acme, tmp_path),
            probe(queue, globex, tmp_path, fail=True),  # ends with a failed statement
            probe(queue, acme, tmp_path),
            probe(queue, globex, tmp_path),
        ]
    for saw, tenant in zip(seen, [acme, globex, acme, globex], strict=True):
        assert saw["search_path"] == session_of(tenant)
        assert saw["rls_tenant"] == ""
        assert saw["users"] and all(email.endswith(f"@{tenant.slug}.test") for email in saw["users"]), saw["users"]
    pids = {saw["pid"] for saw in seen}
    # Kept for CONN_MAX_AGE (a failed statement leaves a usable session); 0: a session per task.
    assert len(pids) == (1 if max_age != "0" else 4), pids
