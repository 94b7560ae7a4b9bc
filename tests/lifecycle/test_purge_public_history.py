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
