"""Usage roll-up marks in Redis outlive a restore of the database or of a workspace
(apps/billing/rollups.py). A mark says "this tenant's day was rolled up after it ended", a fact
about the database it was written against; the key names no database, and the restores leave
Redis as it is. So a mark written in the timeline a restore undid told the hourly job that a day
of the restored database was complete while its UsageDay rows stopped at the last roll-up before
the backup, and the day was under-counted for good. A mark now also holds the calls its roll-up
left in UsageDay, and counts only while UsageDay holds as many (found by the restore review)."""

import io
import json
from datetime import UTC, datetime, time, timedelta

from django.core.management import call_command
from django.utils import timezone

from apps.billing import tasks
from apps.billing.rollups import usage_daily, usage_rollup
from apps.lifecycle.backup import backup_list
from tests.billing.test_rollups import _call
from tests.lifecycle.test_backup import (  # noqa: F401 — fixtures
    backup_role,
    backup_role_url,
    manage,
    scratch_databases,
    scratch_name,
    unblocked,
    workspace,
)

# Run in the restored database, as the hourly beat job and its workers would run there.
_HOURLY_JOB_IN_RESTORED_DB = """
import json, sys
from datetime import date, timedelta
from foundry.celery import app
app.conf.task_always_eager = True  # the job's per-tenant tasks run here, as a worker would run them
from apps.billing import tasks
from apps.billing.rollups import usage_daily
tasks.usage_rollup_recent()
tenant, day = {tenant}, date.fromisoformat("{day}")
rows = usage_daily(tenant_ids=[tenant], start=day, end=day + timedelta(days=1), by="agent")
print(json.dumps([r["calls"] for r in rows]))
"""


def test_a_whole_database_restore_has_its_partly_rolled_day_caught_up_despite_marks_of_the_undone_timeline(
    workspace,  # noqa: F811
    backup_role,  # noqa: F811
    scratch_databases,  # noqa: F811
    tmp_path,
):
    today = timezone.now().astimezone(UTC).date()
    day = today - timedelta(days=3)  # in the hourly job's catch-up window
    morning = datetime.combine(day, time(9), tzinfo=UTC)
    _call(workspace, morning)
    usage_rollup(tenant_id=workspace.pk, day=day, began=morning + timedelta(hours=1))  # D's last run that got through
    _call(workspace, morning + timedelta(hours=6))  # that afternoon's call, not yet rolled up

    # The nightly whole-database backup: the ledger holds 2 calls of D, its roll-up 1.
    call_command("backup", dir=tmp_path, keep=0, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, "database")

    # The live timeline goes on: the hourly job catches up on D and marks it rolled up to its end.
    tasks.usage_rollup_tenant(workspace.pk, day.isoformat())
    live = usage_daily(tenant_ids=[workspace.pk], start=day, end=day + timedelta(days=1), by="agent")
    assert [r["calls"] for r in live] == [2]

    # The database is lost and restored from the backup; the platform runs on it with the same Redis.
    name = scratch_name(scratch_databases)
    call_command("restore", str(made), database=name, create=True, stdout=io.StringIO())
    ran = manage(
        "shell", "-c", _HOURLY_JOB_IN_RESTORED_DB.format(tenant=workspace.pk, day=day.isoformat()), database=name
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    calls = json.loads(ran.stdout.strip().splitlines()[-1])
    # The restored ledger holds both calls of D; its roll-up must be caught up to them.
    assert calls == [2], (
        f"day {day} of the restored database shows {calls} call(s) though its ledger holds 2: the hourly "
        "job skipped its catch-up because a roll-up mark left in Redis by the undone timeline says the "
        "day was already rolled up to its end"
    )


def test_a_lost_workspace_restored_from_its_backup_has_its_partly_rolled_day_caught_up(workspace, tmp_path):  # noqa: F811
    """The same through a workspace's restore: lost by accident (its schema dropped and its public
    rows deleted, as tests/lifecycle/test_backup.py's `workspace_lose`, not through the purge, which
    deletes its marks), then `manage.py restore FILE --tenant` brings back its ledger and roll-ups
    as of the backup, while Redis still says the day was rolled up to its end."""
    from tests.lifecycle.test_backup import workspace_lose

    today = timezone.now().astimezone(UTC).date()
    day = today - timedelta(days=3)
    morning = datetime.combine(day, time(9), tzinfo=UTC)
    _call(workspace, morning)
    usage_rollup(tenant_id=workspace.pk, day=day, began=morning + timedelta(hours=1))
    _call(workspace, morning + timedelta(hours=6))
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = tmp_path.glob("foundry-tenant-*.tar")

    tasks.usage_rollup_tenant(workspace.pk, day.isoformat())  # the live timeline's catch-up, marked
    workspace_lose(workspace)
    call_command("restore", str(made), tenant=workspace.slug, stdout=io.StringIO(), stderr=io.StringIO())

    from foundry.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the hourly job's per-tenant tasks run here, as a worker runs them
    try:
        tasks.usage_rollup_recent()
    finally:
        app.conf.task_always_eager = eager
    rows = usage_daily(tenant_ids=[workspace.pk], start=day, end=day + timedelta(days=1), by="agent")
    assert [r["calls"] for r in rows] == [2], (
        f"day {day} of the restored workspace shows {[r['calls'] for r in rows]} call(s) though its ledger "
        "holds 2: a roll-up mark left in Redis from before the restore skips the day's catch-up"
    )
