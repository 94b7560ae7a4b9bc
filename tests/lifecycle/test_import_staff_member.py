"""An imported archive never makes a workspace member a platform operator in the audit trail."""

import io
import json
import uuid

import pytest
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.lifecycle.archive import tenant_import
from tests.conftest import audit_events, client_for
from tests.lifecycle.test_archive import archive_of, with_member


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _staff_everyone(content: bytes) -> bytes:
    lines = []
    for line in content.splitlines():
        row = json.loads(line)
        row["is_staff"] = True
        lines.append(json.dumps(row).encode())
    return b"\n".join(lines) + b"\n"


def test_an_imported_member_is_never_recorded_as_a_platform_operator(acme, django_capture_on_commit_callbacks):
    """`is_staff` means a platform operator, and only in the public schema; an archive is
    checksummed, not signed, so one may set it on its members: the import clears it, and the
    imported owner's actions are recorded on the platform's chain as a member of that workspace
    (`user:<pk>@tenant:<id>`), never under an operator's id."""
    data, _ = archive_of(acme)
    crafted = with_member(data, "schema/accounts_user.ndjson", _staff_everyone)
    slug = f"s{uuid.uuid4().hex[:10]}"
    new = tenant_import(io.BytesIO(crafted), slug=slug)
    with schema_context(new.schema_name):
        owner = User.objects.get(email="owner@acme.test")
        assert not User.objects.filter(is_staff=True).exists()
    with schema_context("public"):
        operator = User.objects.get(email="operator@platform.test")
    member = client_for(new, "owner@acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        response = member.post("/api/v1/workspace/deletion", {"confirm": slug}, content_type="application/json")
    assert response.status_code == 202, response.content
    (event,) = audit_events("public", action="tenant.deletion_scheduled", target_id=str(new.pk))
    from apps.audit.models import PLATFORM, AuditActor
    from apps.audit.scope import rls_scope

    with rls_scope(PLATFORM):
        shown = AuditActor.objects.filter(tenant_id=PLATFORM, actor_id=f"operator:{operator.pk}").first()
    # What the platform console now shows as the platform operator's email, on every event of theirs.
    assert event.actor_type != "operator" and event.actor_id == f"user:{owner.pk}@tenant:{new.pk}", (
        f"the imported workspace's owner is recorded on the platform chain as {event.actor_type} "
        f"{event.actor_id!r} (the platform operator operator@platform.test is operator:{operator.pk}); "
        f"the platform chain's actor row for operator:{operator.pk} now says {shown and shown.email!r}"
    )
