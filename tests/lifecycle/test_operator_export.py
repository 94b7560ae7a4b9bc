"""The operator console exports a workspace (PRODUCT.md: platform console, tenants: export): the
same job as the workspace's own, started by the operator, recorded on the workspace's trail as
theirs, holding members' password hashes as `manage.py export_tenant` does, and downloaded on the
platform host only, by operators only."""

import re
from urllib.parse import urlsplit

import pytest
from django_tenants.utils import schema_context

from apps.lifecycle.models import Export
from apps.lifecycle.tasks import export_tenant
from tests.conftest import audit_events, client_for
from tests.lifecycle.test_exports import emails_in, exports_of, run_here


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    monkeypatch.setattr(export_tenant, "apply_async", lambda *a, **k: None)


def _download_link(client, slug: str) -> str:
    html = client.get(f"/tenants/{slug}/exports/").content.decode()
    return re.search(r'href="([^"]+)" data-testid="export-download"', html).group(1).replace("&amp;", "&")


def test_an_operator_exports_a_workspace_from_the_tenant_list(operator_client, acme):
    assert "/tenants/acme/exports/" in operator_client.get("/", {"q": "acme"}).content.decode()
    assert operator_client.post("/tenants/acme/exports/").status_code == 302
    (export,) = exports_of(acme)
    assert export.password_hashes is True and export.created_by == "operator@platform.test"
    (started,) = audit_events("acme", action="export.started")
    assert started.actor_type == "operator"
    run_here(acme, export.pk)

    link = _download_link(operator_client, "acme")
    assert urlsplit(link).path == f"/tenants/acme/exports/{export.pk}/download/"
    response = operator_client.get(link)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert "owner@acme.test" in emails_in(body)
    assert len(audit_events("acme", action="export.downloaded")) == 1


def test_no_one_but_an_operator_reaches_it_nor_another_workspaces_export(operator_client, acme, globex):
    operator_client.post("/tenants/acme/exports/")
    (export,) = exports_of(acme)
    run_here(acme, export.pk)
    link = _download_link(operator_client, "acme")
    # Another workspace's slug with acme's export: no such export there.
    elsewhere = link.replace("/tenants/acme/", "/tenants/globex/")
    assert operator_client.get(elsewhere).status_code == 404
    assert operator_client.get(link.replace("signature=", "signature=x")).status_code in (403, 404)
    # Anyone not signed in on the platform host, and the workspace's owner on their own, get nothing.
    for client in (client_for(None), client_for(acme, "owner@acme.test")):
        assert client.get(link).status_code in (302, 403, 404)
        assert client.post("/tenants/acme/exports/").status_code in (302, 403, 404)
    assert len(exports_of(acme)) == 1
    assert operator_client.get("/tenants/nope/exports/").status_code == 404
    with schema_context(globex.schema_name):
        assert not Export.objects.exists()


@pytest.mark.parametrize("put_away", ["suspend", "delete"])
def test_a_suspended_or_deleting_workspace_is_refused_an_export_it_would_never_run(operator_client, acme, put_away):
    """Its task refuses a workspace that is not active: the job stayed queued, "started", until a
    resume or the purge."""
    from apps.lifecycle.deletion import tenant_deletion_schedule
    from apps.tenants.services import tenant_suspend

    if put_away == "suspend":
        tenant_suspend(tenant=acme, actor="service:test")
    else:
        tenant_deletion_schedule(tenant=acme, actor="service:test")
    response = operator_client.post("/tenants/acme/exports/")
    assert response.status_code == 409 and b"tenant_not_active" in response.content
    assert exports_of(acme) == []


def test_the_page_is_the_operator_consoles_not_the_workspaces(operator_client, acme):
    """The workspace passed as `tenant` shadowed the console's own: the header read "Acme
    Corporation" and named the operator a Viewer of it."""
    html = operator_client.get("/tenants/acme/exports/").content.decode()
    header = html.split('<header class="topbar">', 1)[1].split("</header>", 1)[0]
    assert "Platform operator console" in header and "Viewer" not in header, header


def test_a_workspace_purged_while_its_export_starts_is_404_not_500(fresh_tenant, django_db_blocker, monkeypatch):
    """Another operator's purge committed between this request's lookup and its start: the
    export was started on a schema no longer there (a ProgrammingError, a 500)."""
    from django.test import Client

    from apps.accounts.models import User
    from apps.lifecycle import views_operator_export
    from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
    from apps.tenants.models import Tenant

    slug = fresh_tenant.slug
    with django_db_blocker.unblock():
        tenant_deletion_schedule(tenant=fresh_tenant, actor="service:test", grace_days=0)
        found = views_operator_export.tenant_get

        def looked_up_then_purged(*, slug):
            tenant = found(slug=slug)
            tenant_purge(tenant=tenant, actor="service:test")
            return tenant

        monkeypatch.setattr(views_operator_export, "tenant_get", looked_up_then_purged)
        client = Client(HTTP_HOST="localhost", raise_request_exception=False)
        with schema_context("public"):
            client.force_login(User.objects.get(email="operator@platform.test"))
        response = client.post(f"/tenants/{slug}/exports/")
        assert not Tenant.objects.filter(slug=slug).exists()
    assert response.status_code == 404, response.status_code
