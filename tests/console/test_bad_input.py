"""Console inputs that used to crash with a 500: each is a clear 4xx now and changes nothing (PRODUCT.md: no
input may produce a 500)."""

import pytest
from django_tenants.utils import schema_context

from apps.catalog.models import Deployment, Document, Version
from apps.lifecycle.retention import retention_policy_dict, retention_policy_get
from tests.conftest import client_for
from tests.runs.conftest import FINANCE, TRIAGE, deploy


def _client(acme):
    client = client_for(acme, "owner@acme.test")
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/domains/%00/"),
        ("get", "/agents/%00/"),
        ("get", "/domains/%00/diff/"),
        ("get", "/agents/a%00b/diff/"),
        ("get", "/domains/%00/rollback/1/"),
        ("post", "/domains/%00/rollback/1/"),
        ("post", "/agents/%00/deploy/1/"),
        ("post", "/agents/%00/migrate/"),
        ("get", "/catalog/domain/new/?name=%00"),
        ("get", "/catalog/agent/new/?name=a%00b"),
    ],
)
def test_a_nul_in_a_document_name_is_a_404_not_a_500(acme, method, path):
    deploy(acme, FINANCE, TRIAGE)
    with schema_context("acme"):
        before = (Document.objects.count(), Version.objects.count(), Deployment.objects.count())
    response = getattr(_client(acme), method)(path)
    assert response.status_code == 404, response.status_code
    with schema_context("acme"):
        assert (Document.objects.count(), Version.objects.count(), Deployment.objects.count()) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/settings/audit-sinks/%00/"),
        ("post", "/settings/audit-sinks/%00/"),
        ("get", "/settings/audit-sinks/a%00b/delete/"),
        ("post", "/settings/audit-sinks/%00/delete/"),
    ],
)
def test_a_nul_in_an_audit_sink_name_is_a_404_not_a_500(acme, method, path):
    response = getattr(_client(acme), method)(path, {"kind": "syslog", "format": "jsonl", "host": "siem.example.com"})
    assert response.status_code == 404, response.status_code


@pytest.mark.parametrize("field", ["runs_days", "audit_days"])
def test_a_retention_period_of_thousands_of_digits_is_a_form_error_not_a_500(acme, field):
    with schema_context("acme"):
        before = retention_policy_dict(retention_policy_get())
    data = {name: "" for name in before if name != "audit_legal_hold"}
    data[field] = "1" * 5000  # past Python's 4300-digit int() limit
    response = _client(acme).post("/settings/retention/", data)
    assert response.status_code == 400, response.status_code
    with schema_context("acme"):
        assert retention_policy_dict(retention_policy_get()) == before
