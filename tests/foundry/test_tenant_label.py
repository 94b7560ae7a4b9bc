"""The metrics' `tenant` label is the workspace's slug, as spans and log lines name it (a slug
with a hyphen lives in a schema with an underscore)."""

import json

from django_tenants.utils import schema_context
from prometheus_client import REGISTRY

from apps.runs.usage import usage_record
from apps.tenants.services import tenant_provision
from tests.conftest import PASSWORD, ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "foundry-overview.json"


def test_the_tenant_label_of_the_counters_is_the_slug_that_spans_and_logs_carry(db):
    tenant = tenant_provision(
        slug="rev-obs-co", name="Rev Obs Co", owner_email="owner@rev-obs-co.test", owner_password=PASSWORD
    ).tenant
    assert tenant.schema_name != tenant.slug  # "rev_obs_co"

    # The dashboard joins the two: its $tenant values (Prometheus' tenant label) filter span.tenant.slug.
    dashboard = json.loads(DASHBOARD.read_text())
    [variable] = dashboard["templating"]["list"]
    assert "foundry_model_tokens_total, tenant" in variable["definition"]
    tempo_queries = [
        target.get("query", "")
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "span.tenant.slug" in str(target.get("query", ""))
    ]
    assert tempo_queries, "the dashboard filters Tempo panels by span.tenant.slug=~$tenant"

    with schema_context(tenant.schema_name):
        usage_record(tenant_id=tenant.pk, project="p", agent="a", run_id=None, step=None, provider="scripted",
                     model="m-rev-obs", input_tokens=3, output_tokens=2)  # fmt: skip
    by_slug = REGISTRY.get_sample_value(
        "foundry_model_tokens_total",
        {"tenant": tenant.slug, "provider": "scripted", "model": "unpriced", "kind": "input"},
    )
    by_schema = REGISTRY.get_sample_value(
        "foundry_model_tokens_total",
        {"tenant": tenant.schema_name, "provider": "scripted", "model": "unpriced", "kind": "input"},
    )
    assert by_slug == 3, (
        f"tokens are labelled tenant={tenant.schema_name!r} (schema) not {tenant.slug!r} (slug): "
        f"by slug {by_slug}, by schema {by_schema}"
    )
