"""docs/audit-siem.md: "Literal addresses are checked when a sink is saved
(`sink_address_refused`)". A loopback or private address spelt the other ways the C resolver
(inet_aton) reads an IPv4 literal — one decimal number, hex, octal, shortened dotted forms — is
saved as if it were a host name, and only refused later, at delivery. (It is refused there: no
request reaches it; but the admin is told the sink is fine, and the error only shows up as a
delivery failure with back-off.)"""

import pytest

from apps.audit.models import AuditSink
from apps.audit.scope import rls_scope
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_http_networks_set
from tests.api.conftest import api, issue


@pytest.mark.parametrize(
    "body, field",
    [
        ({"kind": "syslog", "host": "2130706433", "tls": False}, "host"),  # 127.0.0.1
        ({"kind": "syslog", "host": "0x7f.1", "tls": False}, "host"),  # 127.0.0.1
        ({"kind": "syslog", "host": "127.1", "tls": False}, "host"),  # 127.0.0.1
        ({"kind": "syslog", "host": "167772161", "tls": False}, "host"),  # 10.0.0.1
        ({"kind": "syslog", "host": "0", "tls": False}, "host"),  # 0.0.0.0
        ({"kind": "webhook", "url": "https://2130706433/ingest"}, "url"),
        ({"kind": "webhook", "url": "https://0xa9fea9fe/latest/meta-data/"}, "url"),  # 169.254.169.254
    ],
    ids=["decimal", "hex", "short", "decimal-private", "zero", "webhook-decimal", "webhook-hex-metadata"],
)
def test_an_ipv4_literal_in_another_spelling_is_refused_when_saved(acme, settings, body, field):
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []
    response = api(acme, issue(acme)).put("/api/v1/audit/sinks/siem", body, content_type="application/json")
    assert response.status_code == 400, f"saved: {response.content[:200]!r}"
    assert response.json()["error"]["details"][field][0]["code"] == "sink_address_refused"
    with rls_scope(acme.pk):
        assert not AuditSink.objects.filter(tenant_id=acme.pk).exists()


def test_an_operator_allowed_private_network_admits_a_sink_saved_through_the_api(acme, settings):
    """The allowance is read from the workspace's stored row: a request's tenant is the router's
    partial copy, without its networks (docs/audit-siem.md: the same allowance as HTTP tools)."""
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []
    tenant_http_networks_set(tenant=acme, networks=["10.20.0.0/16"], actor="cli:tenant_http_networks")
    assert Tenant.objects.get(pk=acme.pk).http_allowed_networks == ["10.20.0.0/16"]

    body = {"kind": "syslog", "host": "10.20.0.5", "port": 6514, "tls": False}
    response = api(acme, issue(acme)).put("/api/v1/audit/sinks/siem", body, content_type="application/json")

    assert response.status_code == 201, response.content[:300]
