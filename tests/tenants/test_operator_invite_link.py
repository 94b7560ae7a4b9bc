"""The operator console's invitation link for a new workspace's owner uses the address the
operator's browser reached (the Host header), never the port the server listens on behind a
TLS proxy."""

from django.test import Client, override_settings
from django_tenants.utils import schema_context

from apps.accounts.models import User


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_the_operator_consoles_invitation_link_uses_the_public_https_origin(db, django_capture_on_commit_callbacks):
    # As gunicorn (bound to 0.0.0.0:8000) hands a request the proxy forwarded for
    # https://localhost/: Host without a port, SERVER_PORT the listening port.
    client = Client(HTTP_HOST="localhost", SERVER_PORT="8000", HTTP_X_FORWARDED_PROTO="https")
    with schema_context("public"):
        client.force_login(User.objects.get(email="operator@platform.test"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/tenants/new/",
            {"slug": "initech", "name": "Initech", "plan": "team", "owner_email": "bill@initech.test"},
            SERVER_PORT="8000",
        )
    assert response.status_code == 200
    assert response.context["invite_url"].startswith("https://initech.localhost/invite/"), response.context[
        "invite_url"
    ]


def test_links_to_a_workspace_point_at_its_primary_domain_whatever_order_its_domains_come_in(acme):
    """The first of a workspace's domains was taken, in no order: a custom one (an import attaches
    the archive's) could come first, and the owners' invitation links point there — a host whoever
    crafted the archive may hold. Its primary domain is taken (`Tenant.primary_host`). Found by a
    review."""
    from django.test import RequestFactory

    from apps.tenants.models import Domain, Tenant
    from apps.tenants.views import tenant_address

    primary = Domain.objects.get(tenant=acme, is_primary=True)
    Domain.objects.create(domain="ai.acme-custom.test", tenant=acme, is_primary=False)
    primary.delete()  # recreated after the custom one: it now comes second in the table
    Domain.objects.create(domain=primary.domain, tenant=acme, is_primary=True)
    assert Domain.objects.filter(tenant=acme).order_by("pk")[0].domain == "ai.acme-custom.test"
    request = RequestFactory(HTTP_HOST="localhost").get("/tenants/")
    assert tenant_address(request, Tenant.objects.get(pk=acme.pk)) == f"http://{primary.domain}/"
