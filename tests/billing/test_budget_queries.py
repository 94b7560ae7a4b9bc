"""GET /api/v1/budgets reads the caps in a number of statements that does not grow with the budgets
(apps/billing/selectors.py quota_uses: the plan limits once, the caps from the budgets listed)."""

import pytest
from django_tenants.utils import schema_context

from apps.billing.services import budget_set
from tests.api.conftest import api, issue
from tests.conftest import tenant_user
from tests.data_growth import queries_of

pytestmark = pytest.mark.django_db


def _budgets_add(tenant, start: int, n: int) -> None:
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        for i in range(start, start + n):
            budget_set(actor=owner, tenant_id=tenant.pk, project=f"project-{i}", monthly_tokens=1000 + i)


def test_budget_list_reads_caps_in_queries_independent_of_budget_count(acme, settings):
    """GET /api/v1/budgets "lists the budgets and every cap with this month's use" (docs/billing.md,
    "Quotas and budgets"). The view already holds every budget (`budget_list`), so the caps can be
    built from them and the plan's limits in a fixed number of statements. Instead `quota_uses`
    calls `caps_for` once per project budget, and each call re-reads the plan limits
    (`limits_for`) and all budgets again (`budgets_of`, with its RLS scope round trips): only the
    per-process cache of FOUNDRY_TENANT_ROUTE_TTL hides it, and with the TTL at 0 (allowed: its
    minimum; the test settings' value) or whenever that cache is cold, a workspace with 13 project
    budgets costs ~70 more statements than one with 3 (~7 per budget). The console's /usage/ page
    (quota bars) goes through the same `quota_uses`."""
    settings.FOUNDRY_TENANT_ROUTE_TTL = 0
    client = api(acme, issue(acme))

    _budgets_add(acme, 0, 3)
    queries_of(client, "/api/v1/budgets")  # warm-up (auth, route)
    small, response = queries_of(client, "/api/v1/budgets")
    assert response.status_code == 200
    assert len(response.json()["budgets"]) == 3

    _budgets_add(acme, 3, 10)
    large, response = queries_of(client, "/api/v1/budgets")
    assert response.status_code == 200
    assert len(response.json()["budgets"]) == 13
    assert large == small, f"{small} statements with 3 budgets, {large} with 13"
