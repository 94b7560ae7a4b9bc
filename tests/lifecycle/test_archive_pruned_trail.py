"""A workspace whose audit trail retention pruned, exported and imported (docs/export.md)."""

import io
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.scope import rls_scope
from apps.audit.services import audit_checkpoint_sign, audit_prune, audit_record
from apps.audit.verify import audit_verify
from apps.lifecycle.archive import ArchiveError, tenant_export, tenant_import
from apps.tenants.models import Tenant
from foundry.db.roles import owner_role
from tests.audit.conftest import SIGNING_SEED, chain_age
from tests.lifecycle.test_backup import unblocked, workspace  # noqa: F401 - fixtures


def test_a_pruned_trail_is_refused_on_import_by_its_code_not_a_500(workspace, settings):  # noqa: F811
    """Retention's prune appends `audit.pruned`, which the events' Row-Level Security lets the
    trail's owner role alone write; the import writes as the app role. With an owner role the
    import is refused `archive_trail_pruned`, naming the member, and leaves nothing behind (it was
    a raw ProgrammingError: a 500 on the operator's import page). With one role, which owns the
    trail, the copy imports and verifies."""
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"test1:{SIGNING_SEED}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = []
    for number in range(5):
        audit_record(action="thing.done", actor="test", chain=workspace.pk, data={"n": number})
    chain_age(workspace.pk, 10)  # written ten days ago: the prune never takes the last day's events
    assert audit_checkpoint_sign(workspace.pk) is not None
    audit_record(action="thing.after", actor="test", chain=workspace.pk)
    assert audit_prune(tenant_id=workspace.pk, before=timezone.now() - timedelta(days=2)) > 0
    archive = io.BytesIO()
    tenant_export(workspace, archive, password_hashes=True)
    slug = f"p{uuid.uuid4().hex[:10]}"
    if owner_role() is None:
        copy = tenant_import(io.BytesIO(archive.getvalue()), slug=slug)
        assert audit_verify(copy.pk).ok
        with rls_scope(copy.pk):
            assert AuditEvent.objects.filter(tenant_id=copy.pk, action="audit.pruned").exists()
        return
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(archive.getvalue()), slug=slug)
    assert (refused.value.code, refused.value.member) == ("archive_trail_pruned", "public/audit_auditevent.ndjson")
    assert not Tenant.objects.filter(slug=slug).exists()
