"""The operator console's import page: an uploaded archive becomes a new workspace; a bad archive,
slug or size is refused with its code (and the member at fault), and nothing is written."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.tenants.models import Tenant
from apps.tenants.schemas import schema_is_present
from tests.conftest import PASSWORD, audit_events, client_for
from tests.lifecycle.test_archive import archive_of, with_member, world

PAGE = "/tenants/import/"


def upload(client: Client, data: bytes, *, slug: str, name: str = "", filename: str = "acme.zip"):
    archive = SimpleUploadedFile(filename, data, content_type="application/zip")
    return client.post(PAGE, {"archive": archive, "slug": slug, "name": name})


def refusal(response) -> tuple[str, str | None]:
    """(code, member) the page shows for a refused import."""
    html = response.content.decode()
    assert 'data-testid="import-error"' in html and "nothing was created" in html
    block = html[html.index('data-testid="import-error"') :].split(">", 1)[0]
    code = block.split('data-code="', 1)[1].split('"', 1)[0]
    member = block.split('data-member="', 1)[1].split('"', 1)[0] if "data-member=" in block else None
    return code, member


@pytest.fixture
def acme_archive(acme) -> bytes:
    return archive_of(acme)[0]


def test_it_imports_an_archive_as_a_new_workspace(acme, acme_archive, operator_client):
    assert operator_client.get(PAGE).status_code == 200
    response = upload(operator_client, acme_archive, slug="acme-restored", name="Acme, restored")
    assert response.status_code == 302 and response["Location"] == "/?q=acme-restored"
    # The owners' invitation links wait in the session, never in a cookie (logged by proxies).
    assert "messages" not in response.cookies
    tenant = Tenant.objects.get(slug="acme-restored")
    assert (tenant.name, tenant.schema_name, tenant.plan) == ("Acme, restored", "acme_restored", acme.plan)
    with schema_context(tenant.schema_name):
        emails = set(User.objects.values_list("email", flat=True))
    assert emails == {f"{role}@acme.test" for role in ("owner", "admin", "developer", "operator", "viewer")}
    [event] = audit_events("public", action="tenant.imported", target_id=str(tenant.pk))
    assert event.actor_id.startswith("operator:")
    assert "Workspace acme-restored imported" in operator_client.get("/").content.decode()
    # It answers on its own host at once.
    assert client_for(tenant, "owner@acme.test").get("/").status_code == 200


def test_a_file_that_is_no_archive_is_refused_and_nothing_is_written(db, operator_client):
    before = world()
    response = upload(operator_client, b"not a zip at all\n", slug="from-notes")
    assert response.status_code == 400
    assert refusal(response) == ("archive_not_an_archive", None)
    assert world() == before and not schema_is_present("from_notes")


def test_a_member_altered_after_export_is_refused_naming_it(acme, acme_archive, operator_client):
    altered = with_member(
        acme_archive,
        "schema/accounts_user.ndjson",
        lambda content: content.replace(b"viewer@acme.test", b"hacker@evil.test", 1),
        manifest_fixed=False,
    )
    before = world()
    response = upload(operator_client, altered, slug="acme-altered")
    assert response.status_code == 400
    assert refusal(response) == ("archive_damaged", "schema/accounts_user.ndjson")
    assert "schema/accounts_user.ndjson" in response.content.decode()
    assert world() == before and not Tenant.objects.filter(slug="acme-altered").exists()


def test_a_truncated_archive_is_refused(acme, acme_archive, operator_client):
    before = world()
    response = upload(operator_client, acme_archive[: len(acme_archive) // 2], slug="acme-cut")
    assert response.status_code == 400 and refusal(response) == ("archive_truncated", None)
    assert world() == before


@pytest.mark.parametrize(
    ("slug", "code", "status"), [("globex", "slug_taken", 409), ("Not A Slug", "slug_invalid", 400)]
)
def test_a_taken_or_invalid_slug_is_refused(acme_archive, globex, operator_client, slug, code, status):
    before = world()
    response = upload(operator_client, acme_archive, slug=slug)
    assert response.status_code == status
    assert refusal(response)[0] == code
    assert world() == before


def test_a_request_above_the_limit_is_refused_unread_and_a_file_above_it_by_the_form(db, operator_client, settings):
    settings.FOUNDRY_IMPORT_MAX_BYTES = 1024
    before = world()
    response = upload(operator_client, b"PK\x03\x04" + b"x" * 200_000, slug="too-big")
    assert response.status_code == 413
    assert refusal(response) == ("archive_too_large", None)
    assert "use manage.py import_tenant" in response.content.decode()
    # Within the request's allowance for the form around it, but still above the limit itself.
    response = upload(operator_client, b"PK\x03\x04" + b"x" * 4096, slug="too-big")
    assert response.status_code == 400 and "the most this page imports" in response.content.decode()
    assert world() == before


def test_the_form_is_protected_against_cross_site_posts(acme_archive, db):
    client = Client(HTTP_HOST="localhost", enforce_csrf_checks=True)
    with schema_context("public"):
        client.force_login(User.objects.get(email="operator@platform.test"))
    before = world()
    assert upload(client, acme_archive, slug="cross-site").status_code == 403
    assert world() == before


def test_missing_fields_are_refused(operator_client, db):
    response = operator_client.post(PAGE, {"slug": "no-file"})
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    assert not Tenant.objects.filter(slug="no-file").exists()


def test_only_platform_operators_may_import(acme, acme_archive, db):
    started = timezone.now()
    anonymous = client_for(None)
    assert anonymous.get(PAGE).status_code == 302
    assert upload(anonymous, acme_archive, slug="by-anonymous").status_code == 302
    with schema_context("public"):
        User.objects.create_user("staffless@platform.test", PASSWORD, is_staff=False)
    not_operator = client_for(None, "staffless@platform.test")
    assert not_operator.get(PAGE).status_code == 403
    assert upload(not_operator, acme_archive, slug="by-staffless").status_code == 403
    # A workspace's owner, on the workspace's host: there is no such page there.
    assert client_for(acme, "owner@acme.test").get(PAGE).status_code == 404
    assert not Tenant.objects.filter(slug__in=["by-anonymous", "by-staffless"]).exists()
    # (The platform's chain may hold imports other tests committed: only this test's count.)
    assert not [e for e in audit_events("public", action="tenant.imported") if e.occurred_at >= started]
