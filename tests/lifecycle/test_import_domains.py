"""Host routing: a workspace archive (an input the import treats as untrusted: a consistent
archive 'as another tool could make one', tests/lifecycle/test_archive.py `with_member`) must not
make the imported workspace answer on hosts the platform keeps for itself (RESERVED_SLUGS) or on
the host a future workspace's slug will need. `_domains_attach` (apps/lifecycle/archive.py)
attaches a non-primary domain of the archive only when it is free and outside the base domain."""

import json

import pytest
from django.test import Client

from apps.tenants.models import Domain, Tenant
from tests.lifecycle.test_archive import archive_of, with_member
from tests.lifecycle.test_import_console import upload


def _with_domains(archive: bytes, *domains: str) -> bytes:
    def change(content: bytes) -> bytes:
        row = json.loads(content.splitlines()[0])
        lines = [content.rstrip(b"\n")]
        for n, domain in enumerate(domains):
            lines.append(json.dumps({**row, "id": 900_000 + n, "domain": domain, "is_primary": False}).encode())
        return b"\n".join(lines) + b"\n"

    return with_member(archive, "public/tenants_domain.ndjson", change)


@pytest.mark.parametrize("host", ["www.localhost", "login.localhost", "sso.localhost"])
def test_an_imported_archive_cannot_claim_a_reserved_platform_host(acme, operator_client, host):
    crafted = _with_domains(archive_of(acme)[0], host)
    response = upload(operator_client, crafted, slug="acme-copy")
    assert response.status_code == 302, response.status_code  # imported, without that domain
    page = Client(HTTP_HOST=host).get("/login/")
    assert page.status_code == 404, (page.status_code, Domain.objects.filter(domain=host).values_list("tenant__slug"))


def test_an_imported_archive_cannot_squat_the_host_of_a_future_workspace(acme, operator_client):
    crafted = _with_domains(archive_of(acme)[0], "newco.localhost")
    upload(operator_client, crafted, slug="acme-copy")
    # The host belongs to whoever later gets the slug `newco`; until then, nobody answers there.
    page = Client(HTTP_HOST="newco.localhost").get("/login/")
    assert page.status_code == 404, page.content[:200]
    assert not Tenant.objects.filter(slug="newco").exists()


def test_a_squatted_host_still_belongs_to_the_workspace_later_created_with_that_slug(acme, operator_client):
    crafted = _with_domains(archive_of(acme)[0], "newco.localhost")
    upload(operator_client, crafted, slug="acme-copy")
    created = operator_client.post(
        "/tenants/new/", {"slug": "newco", "name": "NewCo", "plan": "team", "owner_email": "boss@newco.test"}
    )
    assert created.status_code == 200, Domain.objects.filter(domain="newco.localhost").values_list("tenant__slug")
    page = Client(HTTP_HOST="newco.localhost").get("/login/")
    assert b"NewCo" in page.content, page.content[:300]


def test_a_custom_domain_outside_the_base_domain_comes_along(acme, operator_client):
    from apps.audit.models import PLATFORM
    from tests.conftest import audit_events

    crafted = _with_domains(archive_of(acme)[0], "agents.acme-corp.example", "localhost", "127.0.0.1")
    assert upload(operator_client, crafted, slug="acme-copy").status_code == 302
    copy = Tenant.objects.get(slug="acme-copy")
    assert set(copy.domains.values_list("domain", flat=True)) == {"acme-copy.localhost", "agents.acme-corp.example"}
    (event,) = audit_events("public", action="tenant.imported", target_id=str(copy.pk))
    assert event.tenant_id == PLATFORM and event.data["domains_taken"] == ["localhost", "127.0.0.1"]


@pytest.mark.parametrize("domain", ["Bad..Host", "UPPER.example", "evil.example/path", "a" * 300 + ".example"])
def test_a_domain_that_is_no_host_name_is_a_refused_archive(acme, operator_client, domain):
    crafted = _with_domains(archive_of(acme)[0], domain)
    response = upload(operator_client, crafted, slug="acme-copy")
    assert response.status_code == 400 and b"no host name" in response.content, response.content[:300]
    assert not Tenant.objects.filter(slug="acme-copy").exists()


def test_a_host_the_platform_answers_on_itself_is_left_behind(acme, operator_client, settings):
    from tests.conftest import audit_events

    settings.FOUNDRY_EXTRA_ALLOWED_HOSTS = ["status.example.net", ".edge.example.net"]
    crafted = _with_domains(archive_of(acme)[0], "status.example.net", "a.edge.example.net", "ok.example.org")
    assert upload(operator_client, crafted, slug="acme-copy").status_code == 302
    copy = Tenant.objects.get(slug="acme-copy")
    assert set(copy.domains.values_list("domain", flat=True)) == {"acme-copy.localhost", "ok.example.org"}
    (event,) = audit_events("public", action="tenant.imported", target_id=str(copy.pk))
    assert sorted(event.data["domains_taken"]) == ["a.edge.example.net", "status.example.net"]
