"""Audit completeness: every security-relevant action is one event naming the right actor and
where it came from (docs/audit.md, "What an event holds")."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from apps.lifecycle.archive import tenant_export
from apps.tenants.models import Tenant
from tests.conftest import audit_events


def test_demo_data_names_itself_as_an_operator_command_when_it_provisions_a_workspace(db, monkeypatch):
    """docs/audit.md: "an operator's command names itself (`service:cli:<command>`)": the
    `tenant.provisioned` events of `manage.py demo_data` (platform chain and the new workspace's)
    name `service:cli:demo_data`, as its operator's creation does (they named `service:demo_data`)."""
    from apps.tenants.management.commands import demo_data

    monkeypatch.setattr(demo_data, "DEMO_TENANTS", [("demoprobe", "Demo probe", "team", "owner@demoprobe.test")])
    monkeypatch.setattr(demo_data, "DEMO_DOCUMENTS", {"demoprobe": ([], [])})
    call_command("demo_data", "--force", stdout=io.StringIO())
    tenant = Tenant.objects.get(slug="demoprobe")
    platform = audit_events("public", action="tenant.provisioned", target_id=str(tenant.pk))
    own = audit_events(tenant.schema_name, action="tenant.provisioned")
    assert [e.actor_id for e in platform + own] == ["service:cli:demo_data"] * 2


def test_owner_invitations_issued_by_a_console_import_carry_the_request(acme, operator_client, settings, tmp_path):
    """Importing an admin's export on the operator console issues a new invitation link for each
    owner who cannot sign in, each one a `member.invite_issued` event in the new workspace's chain,
    which says where it came from (docs/audit.md: `ip`, `user_agent`, `request_id`) as the
    `tenant.imported` event of the same request does."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    out = io.BytesIO()
    tenant_export(acme, out, password_hashes=False)  # an admin's export: no owner can sign in
    archive = SimpleUploadedFile("acme.zip", out.getvalue(), content_type="application/zip")
    response = operator_client.post(
        "/tenants/import/", {"archive": archive, "slug": "acme-invited", "name": ""}, HTTP_USER_AGENT="ops-browser"
    )
    assert response.status_code == 302, response.content[:300]
    copy = Tenant.objects.get(slug="acme-invited")
    (imported,) = audit_events(copy.schema_name, action="tenant.imported")
    assert imported.ip == "127.0.0.1"  # the import itself carries the request
    (invited,) = audit_events(copy.schema_name, action="member.invite_issued")
    assert invited.actor_id.startswith("operator:")
    assert (invited.ip, invited.user_agent, invited.request_id) == (
        "127.0.0.1",
        "ops-browser",
        response["X-Request-ID"],
    ), "the owner's invitation issued by the console import does not say where it came from"
