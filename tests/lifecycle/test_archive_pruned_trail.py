"""A workspace exported and imported (docs/export.md): a trail retention pruned, ids the source gave."""

import io
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_add
from apps.audit.models import AuditActor, AuditEvent
from apps.audit.scope import rls_scope
from apps.audit.services import audit_checkpoint_sign, audit_prune, audit_record
from apps.audit.verify import audit_verify
from apps.lifecycle.archive import ArchiveError, tenant_export, tenant_import
from apps.lifecycle.erasure import member_erase
from apps.tenants.models import Tenant
from foundry.db.roles import owner_role
from tests.audit.conftest import SIGNING_SEED, chain_age
from tests.conftest import PASSWORD, tenant_user
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


def moved(tenant):
    """`tenant` exported and imported under a new slug: the copy."""
    out = io.BytesIO()
    tenant_export(tenant, out, password_hashes=True)
    return tenant_import(io.BytesIO(out.getvalue()), slug=f"m{uuid.uuid4().hex[:10]}")


def test_a_member_added_to_the_copy_does_not_take_the_id_of_an_erased_member_its_trail_names(workspace):  # noqa: F811
    """The audit trail names people by pseudonymous id only (`user:<id>`, docs/audit.md), and an
    erasure leaves that id in every event while erasing the actor row. In the source the id is
    never given again (the sequence has passed it), and the copy's sequences go on from where the
    source's stood, not from the largest id left: the copy's next member does not take the erased
    member's id, whose events would otherwise be appended as `user:<erased id>` (one pseudonym for
    two people, the "attributable to one anonymous actor" rule of docs/lifecycle.md broken) and
    shown as erased (audit_append never writes an erased row's name again)."""
    owner = tenant_user(workspace, f"owner@{workspace.slug}.test")
    with schema_context(workspace.schema_name):
        gone = User.objects.create_user(f"gone@{workspace.slug}.test", PASSWORD, role=Role.DEVELOPER)
        audit_record(action="thing.done", actor=gone)  # something the trail attributes to user:<gone>
        member_erase(actor=owner, email=gone.email)
        assert User.objects.order_by("-pk").first().pk < gone.pk  # the erased member had the largest id
    copy = moved(workspace)

    copy_owner = tenant_user(copy, f"owner@{workspace.slug}.test")
    with schema_context(copy.schema_name):
        newcomer = member_add(actor=copy_owner, email=f"newcomer@{copy.slug}.test", role=Role.VIEWER)
        audit_record(action="thing.done", actor=newcomer)
    with rls_scope(copy.pk):
        actor = AuditActor.objects.get(tenant_id=copy.pk, actor_id=f"user:{newcomer.pk}")
    assert newcomer.pk != gone.pk, "the copy gave the erased member's id to a new member"
    assert actor.erased_at is None and actor.email == newcomer.email


def test_a_workspace_whose_bigint_sequence_reached_its_maximum_still_exports(workspace):  # noqa: F811
    """docs/export.md: the manifest records `sequences`, "the next value" of each sequence. A
    bigint identity sequence that gave its last value (last_value = 2^63-1, is_called) has no next
    value in bigint: the position is added up without overflow (it was "bigint out of range" in
    SQL, and the whole export failed), and clamped to the sequence's range on import. Such a
    sequence is reachable: an import sets a sequence to the largest id loaded + 1."""
    with schema_context(workspace.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('accounts_user', 'id'), %s, true)", [2**63 - 1])
    out = io.BytesIO()
    tenant_export(workspace, out, password_hashes=True)
    assert out.getvalue()


@pytest.mark.parametrize(
    "sequences",
    [
        {"accounts_user.id": "7"},
        {"accounts_user.id": 10**30},
        {"accounts_user.id": 2**63 - 1},
        {"accounts_user.id": -5},
        {"nope.id": 3},
        [1],
        "x",
    ],
    ids=["text", "huge", "at-its-end", "negative", "unknown", "list", "string"],
)
def test_a_crafted_manifests_sequences_fall_back_to_past_the_largest_id(workspace, sequences):  # noqa: F811
    """The manifest is checksummed through its members, not signed: positions that are no whole
    number in the first half of a sequence's range, or name no sequence, are not taken (past the
    largest id, as before archives recorded them), never an error. One held to the sequence's end
    left the copy one member id to give: the second member added failed (nextval's maximum)."""
    import json
    import zipfile

    from apps.lifecycle.archive import MANIFEST

    out = io.BytesIO()
    tenant_export(workspace, out, password_hashes=True)
    crafted = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive, zipfile.ZipFile(crafted, "w") as new:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename == MANIFEST:
                data = json.dumps({**json.loads(data), "sequences": sequences}).encode()
            new.writestr(info.filename, data)
    copy = tenant_import(io.BytesIO(crafted.getvalue()), slug=f"s{uuid.uuid4().hex[:10]}")
    with schema_context(copy.schema_name):
        largest = User.objects.order_by("-pk").values_list("pk", flat=True).first()
        added = [User.objects.create_user(f"new{n}@{copy.slug}.test", PASSWORD, role=Role.VIEWER) for n in (1, 2)]
    assert largest < added[0].pk < added[1].pk
