"""Model history (django-auditlog) of the settings people change: SSO settings, budgets,
quotas (a tenant's limit overrides, the plans) and retention settings each get an entry naming
the actor and the request id — as members, tokens and deployments do (docs/audit.md,
"Model history"; the review's brief lists exactly these)."""

import json
import uuid
from io import StringIO

from auditlog.models import LogEntry
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context

from apps.audit.history import history_actor
from apps.billing.models import Budget
from apps.identity.models import SsoConfiguration
from apps.lifecycle.models import RetentionPolicy
from apps.tenants.models import Plan, Tenant
from apps.tenants.services import plan_update
from tests.api.conftest import api, issue
from tests.identity.conftest import configure, idp, loopback_allowed  # noqa: F401 — fixtures
from tests.providers.conftest import encryption_key  # noqa: F401 — autouse: a key of the test's own
from tests.runs.conftest import triage  # noqa: F401


def entries_for(model, *schemas: str) -> list[LogEntry]:
    """History entries of `model` in any of `schemas` (auditlog writes where the connection is)."""
    found = []
    for schema in schemas:
        with schema_context(schema):
            found += list(LogEntry.objects.get_for_model(model).order_by("timestamp", "pk"))
    return found


def rid() -> str:
    return f"req-{uuid.uuid4().hex}"


def test_a_retention_change_over_the_api_is_history_with_its_token_and_request(acme):
    admin = issue(acme)
    request_id = rid()
    response = api(acme, admin).put(
        "/api/v1/retention",
        json.dumps({"runs_days": 90}),
        content_type="application/json",
        HTTP_X_REQUEST_ID=request_id,
    )
    assert response.status_code == 200, response.content
    entries = [e for e in entries_for(RetentionPolicy, "acme", "public") if "runs_days" in (e.changes or {})]
    assert len(entries) == 1, "retention settings are not model history (RetentionPolicy is not registered)"
    assert (entries[0].additional_data, entries[0].cid) == ({"actor": f"token:{admin[3:15]}"}, request_id)


def test_a_budget_set_over_the_api_is_history_with_its_token_and_request(acme):
    admin = issue(acme)
    request_id = rid()
    response = api(acme, admin).put(
        "/api/v1/budgets",
        json.dumps({"project": "", "monthly_tokens": 5000}),
        content_type="application/json",
        HTTP_X_REQUEST_ID=request_id,
    )
    assert response.status_code == 200, response.content
    entries = entries_for(Budget, "acme", "public")
    assert len(entries) == 1, "budgets are not model history (Budget is not registered)"
    assert (entries[0].additional_data, entries[0].cid) == ({"actor": f"token:{admin[3:15]}"}, request_id)


def test_sso_settings_saved_are_history_with_the_secret_masked(acme, idp, loopback_allowed):  # noqa: F811
    with history_actor("cli:configure_sso"):
        configure(acme, idp)
    with schema_context("acme"):
        config = SsoConfiguration.objects.get(pk=1)
    entries = entries_for(SsoConfiguration, "acme")
    assert len(entries) == 1, "SSO settings are not model history (SsoConfiguration is not registered)"
    assert entries[0].additional_data == {"actor": "service:cli:configure_sso"}
    assert config.client_secret_encrypted not in json.dumps(entries[0].changes)


def test_a_tenants_limit_override_is_history(acme):
    call_command("tenant_limits", "acme", "--requests-per-second", "7", stdout=StringIO())
    connection.set_schema_to_public()
    entries = [
        e
        for e in LogEntry.objects.get_for_object(Tenant.objects.get(pk=acme.pk))
        if "requests_per_second_override" in (e.changes or {})
    ]
    assert len(entries) == 1, "a tenant's quota override is not in its model history"
    assert entries[0].additional_data == {"actor": "service:cli:tenant_limits"}


def test_a_plans_limits_changed_are_history(db):
    connection.set_schema_to_public()
    plan = Plan.objects.get(pk="team")
    with history_actor("cli:test"):
        plan_update(
            actor="cli:test",
            plan=plan,
            requests_per_second=plan.requests_per_second + 1,
            burst=plan.burst,
            concurrent_runs=plan.concurrent_runs,
            monthly_tokens=plan.monthly_tokens,
        )
    entries = entries_for(Plan, "public")
    assert len(entries) == 1, "plan quotas are not model history (Plan is not registered)"


def test_an_audit_sink_s_history_names_its_webhook_by_origin_only(acme):
    """A webhook URL's path may hold the receiver's token: the sink's model history keeps its origin
    (and whether there was more), as the audit trail does — in its changes and in its name."""
    from apps.audit.models import AuditSink

    token = "T0KEN-" + uuid.uuid4().hex
    response = api(acme, issue(acme)).put(
        "/api/v1/audit/sinks/hook",
        {"kind": "webhook", "url": f"https://siem.example.com/hooks/{token}?key={token}"},
        content_type="application/json",
    )
    assert response.status_code in (200, 201), response.content
    entries = entries_for(AuditSink, "acme", "public")
    assert entries
    for entry in entries:
        text = json.dumps(entry.changes) + entry.object_repr
        assert token not in text, text
    assert "https://siem.example.com/[redacted]" in json.dumps(entries[-1].changes)
