"""A workspace's backup keeps the public model history of its own rows — its tenant and domain
rows, its budgets — which names no tenant, so that a restore after a purge (which deletes that
history, docs/lifecycle.md) brings it back with the rows it describes (docs/operations/
disaster-recovery.md). An edited backup cannot write another workspace's history."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.audit.history import tenant_public_history
from apps.billing.services import budget_set
from apps.lifecycle.backup import HISTORY_MEMBER, backup_list, backup_open, tenant_scope
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_limits_set
from tests.lifecycle.test_backup import unblocked, workspace_create  # noqa: F401 — a fixture
from tests.lifecycle.test_backup_tampered import repack, schema_exists

ENTRY = (
    "c.app_label, c.model, l.object_pk, l.object_id, l.object_repr, l.action, l.changes::text,"
    " l.changes_text, l.timestamp, l.actor_id, l.actor_email, l.cid, l.additional_data::text"
)


def history(tenant_id: int) -> list[tuple]:
    """The workspace's entries in public.auditlog_logentry, oldest first, without their ids."""
    where, params = tenant_public_history(tenant_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {ENTRY} FROM public.auditlog_logentry l JOIN public.django_content_type c"
            f" ON c.id = l.content_type_id WHERE {where} ORDER BY l.id",
            params,
        )
        return cursor.fetchall()


def entries_of(app_label: str, model: str, object_pk: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {ENTRY} FROM public.auditlog_logentry l JOIN public.django_content_type c"
            " ON c.id = l.content_type_id WHERE c.app_label = %s AND c.model = %s AND l.object_pk = %s ORDER BY l.id",
            [app_label, model, object_pk],
        )
        return cursor.fetchall()


def backed_up_and_purged(tenant: Tenant, tmp_path) -> object:
    call_command("backup", tenant=tenant.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(tenant))
    scheduled = tenant_deletion_schedule(tenant=tenant, actor="operator:1", grace_days=0)
    tenant_purge(tenant=scheduled, actor="operator:1")
    return made


def test_a_workspace_restored_after_its_purge_has_its_public_history_back(unblocked, tmp_path):  # noqa: F811
    """Before: the purge deleted the history of the workspace's tenant row (an operator's limit
    changes), its domain and its budgets, and no workspace backup held it, so the restored
    workspace came back with its rows but not the record of who changed them."""
    tenant = workspace_create()
    tenant_limits_set(tenant=tenant, overrides={"concurrent_runs": 7}, actor="operator:1")
    budget_set(actor="user:1", tenant_id=tenant.pk, project="kept-project", monthly_tokens=1000)
    budget_set(actor="user:1", tenant_id=tenant.pk, project="kept-project", monthly_tokens=2000)
    before = history(tenant.pk)
    kinds = {(app, model) for app, model, *_ in before}
    assert {("tenants", "tenant"), ("billing", "budget")} <= kinds, kinds

    made = backed_up_and_purged(tenant, tmp_path)
    assert history(tenant.pk) == [], "the purge deletes the workspace's public history"

    call_command("restore", str(made), tenant=tenant.slug, stdout=io.StringIO())
    assert history(tenant.pk) == before


def test_a_backup_edited_to_add_history_to_another_workspaces_budget_does_not_write_it(unblocked, tmp_path):  # noqa: F811
    """The checksums are no signature: an entry added to the history member, naming another
    workspace's budget (a copy of the workspace's own budget's creation, so it names this
    workspace), would have joined that budget's history. An object the database holds history
    for already is left as it is."""
    mine, victim = workspace_create(), workspace_create()
    budget_set(actor="user:1", tenant_id=mine.pk, project="mine", monthly_tokens=1000)
    theirs = budget_set(actor="user:1", tenant_id=victim.pk, project="theirs", monthly_tokens=1000)
    victims_before = entries_of("billing", "budget", str(theirs.pk))
    mine_before = history(mine.pk)
    made = backed_up_and_purged(mine, tmp_path)

    def forged(members: dict[str, bytes]) -> tuple[str, bytes]:
        lines = members[HISTORY_MEMBER].splitlines(keepends=True)
        budget_line = next(line for line in lines if line.startswith(b"billing\tbudget\t"))
        fields = budget_line.split(b"\t")
        fields[2] = fields[3] = str(theirs.pk).encode()  # object_pk, object_id
        fields[4] = b"theirs: emptied by someone else"
        return HISTORY_MEMBER, members[HISTORY_MEMBER] + b"\t".join(fields)

    def one_more(manifest: dict) -> None:
        manifest["history"]["rows"] += 1

    crafted = repack(made, tmp_path / "crafted.tar", member_edit=forged, manifest_edit=one_more)
    backup_open(crafted)  # its checksums hold
    call_command("restore", str(crafted), stdout=io.StringIO())
    assert entries_of("billing", "budget", str(theirs.pk)) == victims_before
    assert history(mine.pk) == mine_before


def test_a_backup_edited_to_add_history_of_another_kind_is_refused(unblocked, tmp_path):  # noqa: F811
    """An entry of a row no workspace's backup holds history of (here another workspace's tenant
    row) is refused, naming the file; nothing is restored."""
    mine, victim = workspace_create(), workspace_create()
    tenant_limits_set(tenant=victim, overrides={"concurrent_runs": 3}, actor="operator:1")
    victims_before = entries_of("tenants", "tenant", str(victim.pk))
    made = backed_up_and_purged(mine, tmp_path)

    def forged(members: dict[str, bytes]) -> tuple[str, bytes]:
        lines = members[HISTORY_MEMBER].splitlines(keepends=True)
        tenant_line = next(line for line in lines if line.startswith(b"tenants\ttenant\t"))
        fields = tenant_line.split(b"\t")
        fields[2] = fields[3] = str(victim.pk).encode()
        return HISTORY_MEMBER, members[HISTORY_MEMBER] + b"\t".join(fields)

    def one_more(manifest: dict) -> None:
        manifest["history"]["rows"] += 1

    crafted = repack(made, tmp_path / "crafted.tar", member_edit=forged, manifest_edit=one_more)
    with pytest.raises(CommandError, match=r"crafted\.tar: 1 model history entry is not of"):
        call_command("restore", str(crafted), stdout=io.StringIO())
    assert entries_of("tenants", "tenant", str(victim.pk)) == victims_before
    assert not Tenant.objects.filter(pk=mine.pk).exists() and not schema_exists(mine.schema_name)


@pytest.mark.parametrize(
    "history",
    [{"columns": "object_pk", "rows": 1}, {"columns": ["object_pk"], "rows": True}, {"columns": ["x"], "rows": 3}],
)
def test_a_backup_whose_history_entry_is_malformed_is_refused_by_name(unblocked, tmp_path, history):  # noqa: F811
    tenant = workspace_create()
    made = backed_up_and_purged(tenant, tmp_path)
    crafted = repack(made, tmp_path / "crafted.tar", manifest_edit=lambda manifest: manifest.update(history=history))
    with pytest.raises(CommandError, match=r"crafted\.tar: its manifest is incomplete"):
        call_command("restore", str(crafted), stdout=io.StringIO())
    assert not Tenant.objects.filter(pk=tenant.pk).exists()


def test_a_backup_made_before_backups_kept_history_still_restores(unblocked, tmp_path):  # noqa: F811
    """Backups of the release before carry no `history` entry: restored as they were."""
    tenant = workspace_create()
    made = backed_up_and_purged(tenant, tmp_path)
    older = repack(made, tmp_path / "older.tar", without=HISTORY_MEMBER, manifest_edit=lambda m: m.pop("history"))
    call_command("restore", str(older), stdout=io.StringIO())
    assert Tenant.objects.filter(pk=tenant.pk).exists()
    assert history(tenant.pk) == []


@pytest.mark.parametrize("created_at", [None, "yesterday", "2026-12-01T10:00:00", 17])
def test_a_backup_without_a_valid_creation_time_is_refused_by_name(unblocked, tmp_path, created_at):  # noqa: F811
    """A manifest's time is what a restore records (`lifecycle.backup.restored`): a manifest
    without one (or a time with no zone) is incomplete, not a traceback."""
    tenant = workspace_create()
    made = backed_up_and_purged(tenant, tmp_path)

    def edit(manifest: dict) -> None:
        manifest.pop("created_at") if created_at is None else manifest.update(created_at=created_at)

    crafted = repack(made, tmp_path / "crafted.tar", manifest_edit=edit)
    with pytest.raises(CommandError, match=r"crafted\.tar: its manifest is incomplete \(no time it was made\)"):
        call_command("restore", str(crafted), stdout=io.StringIO())
    assert not Tenant.objects.filter(pk=tenant.pk).exists()


def test_workspace_backup_works_with_debug_on_as_bin_dev_up_runs_it(unblocked, settings, tmp_path):  # noqa: F811
    """README "Management commands": `manage.py backup --tenant acme` under `bin/dev up`, which
    sets FOUNDRY_DEBUG=1, crashed (`CursorDebugWrapper.copy() takes 2 positional arguments`):
    the history's COPY passed its parameters through Django's debug cursor wrapper."""
    settings.DEBUG = True
    acme = Tenant.objects.get(slug="acme")
    out = io.StringIO()
    call_command("backup", tenant=acme.slug, dir=tmp_path, keep=0, stdout=out)
    assert list(tmp_path.glob("foundry-tenant-acme-*.tar")), out.getvalue()
