"""Numbers written in other scripts' digits (fullwidth, Arabic-Indic) or as JSON strings
where the schema says integer, and "yes" or 1 where it says boolean, are bad input: a clear 400
(or form error), and nothing changes (foundry/api/fields.py, apps/billing/services.py,
apps/lifecycle/views_deletion.py)."""

import pytest
from django_tenants.utils import schema_context

from apps.billing.models import Price
from apps.billing.quotas import budgets_of
from apps.catalog.models import Document, Kind, Version
from apps.catalog.services import agent_deploy, version_publish
from apps.tenants.models import Tenant
from tests.api.conftest import api, issue
from tests.conftest import client_for, tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, deploy

TRIAGE_V2 = TRIAGE.replace(
    "Triage incoming invoices against the finance domain.", "Triage incoming invoices (v2) against finance."
)


def _two_versions_v2_live(tenant):
    """finance v1; invoice-triage v1 and v2 published, v2 live."""
    deploy(tenant, FINANCE, TRIAGE)
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        published = version_publish(actor=owner, source=TRIAGE_V2, message="v2")
        assert published.version.number == 2
        agent_deploy(actor=owner, document=published.version.document, number=2)


def _live_number(tenant) -> int:
    with schema_context(tenant.schema_name):
        return Document.objects.get(kind=Kind.AGENT, name="invoice-triage").live.version.number


# --- REST API: integer fields take strings, fullwidth digits included ----------------------------


@pytest.mark.parametrize("version", ["\uff11", "\u0661", "1"])
def test_api_deploy_refuses_a_version_that_is_not_a_json_integer(acme, version):
    _two_versions_v2_live(acme)
    client = api(acme, issue(acme, role="owner"))
    answer = client.post("/api/v1/agents/invoice-triage/deploy", {"version": version}, content_type="application/json")
    assert answer.status_code == 400, (answer.status_code, answer.content[:200])
    assert _live_number(acme) == 2


@pytest.mark.parametrize("version", ["\uff11", "1"])
def test_api_rollback_refuses_a_version_that_is_not_a_json_integer(acme, version):
    _two_versions_v2_live(acme)
    client = api(acme, issue(acme, role="owner"))
    with schema_context("acme"):
        before = Version.objects.count()
    answer = client.post(
        "/api/v1/agents/invoice-triage/rollback", {"version": version}, content_type="application/json"
    )
    assert answer.status_code == 400, (answer.status_code, answer.content[:200])
    with schema_context("acme"):
        assert Version.objects.count() == before


def test_api_budget_cost_in_fullwidth_digits_is_refused(acme):
    client = api(acme, issue(acme, role="owner"))
    answer = client.put(
        "/api/v1/budgets", {"project": "", "monthly_cost_usd": "\uff11\uff12\uff13"}, content_type="application/json"
    )
    assert answer.status_code == 400, answer.content[:200]
    assert budgets_of(acme.pk) == {}


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        ("/api/v1/agents/invoice-triage/migrate", "post", {"domain_version": "1"}),
        ("/api/v1/audit/sinks/siem", "put", {"kind": "syslog", "host": "siem.example.com", "port": "601"}),
        ("/api/v1/audit/sinks/siem", "put", {"kind": "syslog", "host": "siem.example.com", "enabled": "yes"}),
        ("/api/v1/audit/sinks/siem", "put", {"kind": "syslog", "host": "siem.example.com", "tls": 1}),
        ("/api/v1/audit/sinks/siem", "put", {"kind": "syslog", "host": "siem.example.com", "cursor": "0"}),
        ("/api/v1/sso", "put", {"issuer": "https://idp.example.com", "client_id": "x", "jit_enabled": "false"}),
        ("/api/v1/budgets", "put", {"project": "", "monthly_tokens": "100"}),
        ("/api/v1/budgets", "put", {"project": "", "monthly_tokens": True}),
    ],
)
def test_api_numbers_and_booleans_are_json_numbers_and_booleans(acme, path, method, body):
    """Each field the schema types integer or boolean takes only that JSON type (a 400 naming the
    field), before anything is looked up or written."""
    _two_versions_v2_live(acme)
    client = api(acme, issue(acme, role="owner"))
    answer = getattr(client, method)(path, body, content_type="application/json")
    assert answer.status_code == 400, (answer.status_code, answer.content[:300])
    field = next(name for name in body if name not in ("kind", "host", "project", "issuer", "client_id"))
    assert field in answer.json()["error"]["details"], answer.json()
    assert budgets_of(acme.pk) == {}


def test_api_a_decision_step_is_a_json_integer(acme):
    from tests.runs.test_api import waiting_run

    run = waiting_run(acme, deploy(acme, FINANCE, TRIAGE))
    client = api(acme, issue(acme, role="owner"))
    answer = client.post(f"/api/v1/runs/{run.pk}/approve", {"step": "1"}, content_type="application/json")
    assert answer.status_code == 400, answer.content[:300]
    with schema_context("acme"):
        assert run.approvals.get().decision == "pending"


# --- HTML console ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("monthly_tokens", "\uff11\uff12\uff13"),  # fullwidth
        ("monthly_tokens", "\u0661\u0662\u0663"),  # Arabic-Indic
        ("monthly_cost_usd", "\uff11\uff12\uff13"),
        ("monthly_tokens", "1_0"),  # not a thousands group
    ],
)
def test_console_budget_in_lookalike_digits_is_a_form_error(acme, field, value):
    client = client_for(acme, "owner@acme.test")
    data = {"project": "", "monthly_tokens": "", "monthly_cost_usd": "", "on_exhausted": "stop", field: value}
    response = client.post("/usage/budgets/", data)
    assert response.status_code == 400, response.status_code
    assert budgets_of(acme.pk) == {}


@pytest.mark.django_db
def test_operator_price_in_fullwidth_digits_is_a_form_error():
    client = client_for(None, "operator@platform.test")
    before = Price.objects.count()
    data = {
        "provider": "openai",
        "model": "gpt-lookalike",
        "input_per_mtok": "\uff11\uff12\uff13",
        "output_per_mtok": "2",
        "cached_per_mtok": "0.5",
        "effective_from": "",
    }
    response = client.post("/prices/new/", data)
    assert response.status_code == 400, response.status_code
    assert Price.objects.count() == before


@pytest.mark.django_db
def test_operator_deletion_grace_in_fullwidth_digits_is_refused(globex):
    client = client_for(None, "operator@platform.test")
    response = client.post("/tenants/globex/delete/", {"grace_days": "\uff11\uff12"})
    assert response.status_code == 400 and b"The grace period is a number of days." in response.content
    assert Tenant.objects.get(slug="globex").status != Tenant.Status.DELETING
