"""A workspace's backup made before a person's erasure holds their data. Restored (after a purge,
say), the data would be back, and the data-subject request undone. Each erasure is registered on
the platform's chain (which a purge keeps), and a workspace's restore makes every erasure
registered since its backup was made again (docs/lifecycle.md, docs/operations/disaster-recovery.md)."""

import io

from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.audit.models import PLATFORM, AuditEvent
from apps.audit.scope import rls_scope
from apps.lifecycle.backup import backup_list, tenant_scope
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.lifecycle.erasure import ERASURE_REGISTERED, member_erase
from apps.lifecycle.retention import retention_policy_set
from apps.tenants.models import Tenant
from tests.conftest import PASSWORD
from tests.lifecycle.test_backup import unblocked, workspace_create  # noqa: F401 — a fixture


def backup_of(tenant: Tenant, tmp_path):
    call_command("backup", tenant=tenant.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(tenant))
    return made


def purge(tenant: Tenant) -> None:
    scheduled = tenant_deletion_schedule(tenant=Tenant.objects.get(pk=tenant.pk), actor="operator:1", grace_days=0)
    tenant_purge(tenant=scheduled, actor="operator:1")


def restore(made) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("restore", str(made), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def erase(tenant: Tenant, email: str) -> None:
    with schema_context(tenant.schema_name):
        member_erase(actor="cli:erase_member", email=email)


def anywhere(schema: str, text: str) -> list[str]:
    """The workspace's tables (its schema's) holding `text` in any row."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            [schema],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT 1 FROM "{schema}"."{table}" t WHERE t::text LIKE %s LIMIT 1', [f"%{text}%"])
            if cursor.fetchone():
                found.append(table)
    return found


def test_an_erasure_made_after_the_backup_is_made_again_when_it_is_restored(unblocked, tmp_path):  # noqa: F811
    """Before: the restored workspace had the erased member back, with their address in every
    table the erasure had rewritten."""
    tenant = workspace_create()
    viewer = f"viewer@{tenant.slug}.test"
    made = backup_of(tenant, tmp_path)
    erase(tenant, viewer)
    with rls_scope(PLATFORM):
        registered = AuditEvent.objects.get(tenant_id=PLATFORM, action=ERASURE_REGISTERED, target_id=str(tenant.pk))
    assert viewer not in str(registered.details), "the register names no address"
    purge(tenant)

    out, _err = restore(made)
    assert "Made again 1 erasure(s)" in out, out
    with schema_context(tenant.schema_name):
        assert not User.objects.filter(email=viewer).exists()
    assert anywhere(tenant.schema_name, viewer) == []
    with rls_scope(tenant.pk):
        erased = AuditEvent.objects.filter(tenant_id=tenant.pk, action="member.erased").order_by("seq").last()
    assert erased.data.get("reapplied") is True and erased.actor_id == "service:cli:restore"
    assert call_command("audit_verify", tenant=tenant.slug, stdout=io.StringIO()) is None


def test_an_erasure_the_backup_already_holds_is_not_made_again(unblocked, tmp_path):  # noqa: F811
    tenant = workspace_create()
    erase(tenant, f"viewer@{tenant.slug}.test")
    made = backup_of(tenant, tmp_path)
    purge(tenant)
    out, err = restore(made)
    assert "Made again" not in out and err == ""
    with rls_scope(tenant.pk):
        assert AuditEvent.objects.filter(tenant_id=tenant.pk, action="member.erased").count() == 1


def test_an_erasure_in_another_workspace_is_not_made_in_the_restored_one(unblocked, tmp_path):  # noqa: F811
    """An erasure is per workspace (docs/lifecycle.md): the same person, a member of two, erased
    from one, keeps their membership of the other through its restore."""
    tenant, other = workspace_create(), workspace_create()
    shared = f"shared@{tenant.slug}.test"
    for each in (tenant, other):
        with schema_context(each.schema_name):
            User.objects.create_user(shared, PASSWORD)
    made = backup_of(tenant, tmp_path)
    erase(other, shared)
    purge(tenant)
    out, _err = restore(made)
    assert "Made again" not in out
    with schema_context(tenant.schema_name):
        assert User.objects.filter(email=shared).exists()


def test_a_backup_on_legal_hold_keeps_the_person_and_the_restore_says_whom(unblocked, tmp_path):  # noqa: F811
    """The trail was on legal hold when the backup was made, lifted before the erasure: restored,
    the hold is back and refuses the erasure (its actor table is evidence). The operator is told."""
    tenant = workspace_create()
    viewer = f"viewer@{tenant.slug}.test"
    with schema_context(tenant.schema_name):
        retention_policy_set(actor="cli:test", audit_legal_hold=True)
        viewer_id = User.objects.get(email=viewer).pk
    made = backup_of(tenant, tmp_path)
    with schema_context(tenant.schema_name):
        retention_policy_set(actor="cli:test", audit_legal_hold=False)
    erase(tenant, viewer)
    purge(tenant)
    out, err = restore(made)
    assert "Made again" not in out
    assert "legal hold" in err and f"user:{viewer_id}" in err, err
    with schema_context(tenant.schema_name):
        assert User.objects.filter(email=viewer).exists()


def test_an_erasure_the_restored_workspace_refuses_is_named_and_the_others_made(unblocked, tmp_path):  # noqa: F811
    """The owner erased after another was named: in the backup they are its only owner, whom no
    erasure takes (`last_owner`). The restore stands, the other erasure is made again, and the
    refused one is named with its reason (not a traceback)."""
    tenant = workspace_create()
    owner, viewer, dev = (f"{who}@{tenant.slug}.test" for who in ("owner", "viewer", "dev"))
    with schema_context(tenant.schema_name):
        owner_id = User.objects.get(email=owner).pk
        User.objects.create_user(dev, PASSWORD)
    made = backup_of(tenant, tmp_path)
    with schema_context(tenant.schema_name):
        User.objects.filter(email=viewer).update(role="owner")  # a second owner, which the backup does not hold
    erase(tenant, owner)
    erase(tenant, dev)
    purge(tenant)

    out, err = restore(made)
    assert "Made again 1 erasure(s)" in out, out
    assert f"user:{owner_id} (A workspace needs at least one owner who has joined.)" in err, err
    with schema_context(tenant.schema_name):
        assert User.objects.filter(email=owner).exists() and not User.objects.filter(email=dev).exists()
