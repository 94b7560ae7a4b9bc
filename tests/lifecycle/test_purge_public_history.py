"""A purge deletes the public-schema rows of a workspace that no `tenant_id` column names:
django-auditlog's history of its budgets (and audit sinks), kept in public.auditlog_logentry."""

import json

from django.db import connection

from apps.billing.services import budget_set
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge


def budget_history(tenant_id: int) -> list[str]:
    """public.auditlog_logentry rows of billing.Budget whose changes name this tenant id."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.changes::text FROM public.auditlog_logentry l JOIN public.django_content_type c"
            " ON c.id = l.content_type_id WHERE c.app_label = 'billing' AND c.model = 'budget'"
        )
        rows = [row[0] for row in cursor.fetchall()]
    mine = []
    for text in rows:
        changes = json.loads(text) if text else {}
        if isinstance(changes, str):
            changes = json.loads(changes)
        if str(tenant_id) in [str(value) for value in changes.get("tenant_id", [])]:
            mine.append(text)
    return mine


def test_purging_a_workspace_leaves_no_history_of_its_budgets(fresh_tenant, db):
    """docs/lifecycle.md, "Purge": every public row of the workspace is deleted — the model history
    of its budgets too (project names, amounts, who set them), whose table names no tenant."""
    budget_set(actor="user:1", tenant_id=fresh_tenant.pk, project="secret-project", monthly_tokens=1000)
    assert budget_history(fresh_tenant.pk), "setting a budget is model history (docs/audit.md)"
    tenant = tenant_deletion_schedule(tenant=fresh_tenant, actor="operator:1", grace_days=0)
    tenant_purge(tenant=tenant, actor="operator:1")
    left = budget_history(fresh_tenant.pk)
    assert left == [], f"the purged workspace's budget history is still in public.auditlog_logentry: {left}"


def _budget_entries(object_pk: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.action, l.object_repr, l.changes::text FROM public.auditlog_logentry l"
            " JOIN public.django_content_type c ON c.id = l.content_type_id"
            " WHERE c.app_label = 'billing' AND c.model = 'budget' AND l.object_pk = %s",
            [object_pk],
        )
        return cursor.fetchall()


def test_purge_deletes_the_update_history_of_the_workspaces_budget(fresh_tenant, db):
    """An update of a budget records only the fields it changed (no tenant_id): its entry goes too."""
    budget_set(actor="user:1", tenant_id=fresh_tenant.pk, project="secret-project", monthly_tokens=1000)
    budget = budget_set(actor="user:1", tenant_id=fresh_tenant.pk, project="secret-project", monthly_tokens=2000)
    entries = _budget_entries(str(budget.pk))
    assert len(entries) == 2, entries  # a creation and an update
    tenant = tenant_deletion_schedule(tenant=fresh_tenant, actor="operator:1", grace_days=0)
    tenant_purge(tenant=tenant, actor="operator:1")
    left = _budget_entries(str(budget.pk))
    assert left == [], f"the purged workspace's budget history is still in public.auditlog_logentry: {left}"
