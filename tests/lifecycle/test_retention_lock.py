"""One deleting retention pass of a workspace at a time (apps/lifecycle/retention.py), held by a
Redis lock with an expiry: a second pass is refused as busy at once, a dry run (the console's and
the API's preview, in a web request) never waits, and a pass that fails inside a caller's
transaction gives the lock back and raises its own error."""

import pytest
from django.db import DatabaseError, connection, transaction
from django_redis import get_redis_connection

from apps.lifecycle import retention
from apps.lifecycle.retention import retention_apply, retention_lock_key
from foundry.errors import ServiceError


@pytest.fixture
def held(acme):
    """A pass of acme's is running (another worker's lock)."""
    lock = get_redis_connection("default").lock(retention_lock_key(acme.schema_name), timeout=60)
    assert lock.acquire(blocking=False)
    yield lock
    lock.release()


def test_a_second_pass_is_refused_as_busy_at_once(acme, held):
    with pytest.raises(ServiceError) as refused:
        retention_apply(tenant=acme, actor="test")
    assert (refused.value.code, refused.value.status) == ("retention_busy", 409)


def test_a_dry_run_does_not_wait_behind_a_running_pass(acme, held):
    counts = retention_apply(tenant=acme, dry_run=True, actor="test")
    assert set(counts) >= {"runs", "exports"}


def test_a_pass_failing_inside_an_outer_transaction_gives_the_lock_back_and_its_own_error(acme, monkeypatch):
    def failing_policy_get():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1/0")  # any database error: the outer transaction is aborted

    monkeypatch.setattr(retention, "retention_policy_get", failing_policy_get)
    with pytest.raises(DatabaseError) as raised, transaction.atomic():
        retention_apply(tenant=acme, actor="test")
    assert "division by zero" in str(raised.value)
    assert not get_redis_connection("default").exists(retention_lock_key(acme.schema_name))


def test_one_workspaces_running_pass_never_holds_back_anothers(acme, globex, held):
    counts = retention_apply(tenant=globex, actor="test")  # acme's lock is acme's only
    assert set(counts) >= {"runs", "exports"}
    assert get_redis_connection("default").exists(retention_lock_key(acme.schema_name))
    assert not get_redis_connection("default").exists(retention_lock_key(globex.schema_name))


def test_the_task_finding_a_pass_running_leaves_the_work_to_it_without_a_failure(acme, held, caplog):
    """The nightly task (or its redelivered copy) finding another pass of the workspace running
    logs that at INFO and ends without an error: the refusal went out of the task, which Celery
    logged as a failure with its traceback (found by a review)."""
    from apps.lifecycle.tasks import apply_retention_tenant

    with caplog.at_level("INFO"):
        assert apply_retention_tenant.apply(args=(acme.schema_name,)).get() == {}
    assert any("another pass is running" in r.getMessage() and r.levelname == "INFO" for r in caplog.records)
    assert not any(r.levelname in ("ERROR", "CRITICAL") for r in caplog.records)
