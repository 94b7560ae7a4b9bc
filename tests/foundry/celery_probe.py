"""Tasks for the worker tests, loaded only by their workers (`--include`): each leaves a file
behind, so a test can tell whether, and how, a message ran."""

import json
from pathlib import Path

from celery import shared_task
from django.db import connection, transaction

from foundry.celery import TenantTask


@shared_task(name="tests.probe")
def probe(path: str) -> None:
    Path(path).write_text("ran")


@shared_task(base=TenantTask, name="tests.connection_probe")
def connection_probe(schema_name: str, path: str, *, fail: bool = False) -> None:
    """What the task's database session is: its server process, search path and Row-Level
    Security setting, and the workspace's users it reads. `fail`: it ends with a statement
    failed inside a transaction, as a task's error may leave one."""
    from apps.accounts.models import User

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid(), current_setting('search_path'),"
            " coalesce(current_setting('foundry.tenant_id', true), '')"
        )
        pid, search_path, rls_tenant = cursor.fetchone()
    users = sorted(User.objects.values_list("email", flat=True))
    saw = {"pid": pid, "search_path": search_path, "rls_tenant": rls_tenant, "users": users}
    Path(path).write_text(json.dumps(saw))
    if fail:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM pg_class")
