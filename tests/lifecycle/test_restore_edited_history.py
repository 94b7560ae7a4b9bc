"""What an edited workspace backup could do through its model history, and erasures made again
after a restore whatever became of SECRET_KEY (docs/operations/disaster-recovery.md)."""

import io

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.billing.services import budget_set
from apps.lifecycle.backup import HISTORY_MEMBER
from apps.lifecycle.erasure import _erasure_register
from apps.tenants.models import Tenant
from tests.lifecycle.test_backup import unblocked, workspace_create  # noqa: F401 — a fixture
from tests.lifecycle.test_backup_tampered import repack
from tests.lifecycle.test_restore_public_history import backed_up_and_purged, entries_of
from tests.lifecycle.test_restore_reapplies_erasures import anywhere, backup_of, erase, purge, restore


def _planted(tmp_path):
    """Workspace `mine` restored from a backup edited to add a budget entry naming the budget id
    the sequence hands out next; then `victim` creates its budget, which gets that id."""
    mine, victim = workspace_create(), workspace_create()
    budget_set(actor="user:1", tenant_id=mine.pk, project="mine", monthly_tokens=1000)
    made = backed_up_and_purged(mine, tmp_path)
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value, is_called FROM public.billing_budget_id_seq")
        last, called = cursor.fetchone()
    future = last + 1 if called else last

    def forged(members: dict[str, bytes]) -> tuple[str, bytes]:
        lines = members[HISTORY_MEMBER].splitlines(keepends=True)
        budget_line = next(line for line in lines if line.startswith(b"billing\tbudget\t"))
        fields = budget_line.split(b"\t")
        fields[2] = fields[3] = str(future).encode()  # object_pk, object_id: an id not handed out yet
        fields[4] = b"planted by another workspace's backup"
        return HISTORY_MEMBER, members[HISTORY_MEMBER] + b"\t".join(fields)

    def one_more(manifest: dict) -> None:
        manifest["history"]["rows"] += 1

    crafted = repack(made, tmp_path / "crafted.tar", member_edit=forged, manifest_edit=one_more)
    call_command("restore", str(crafted), stdout=io.StringIO())
    theirs = budget_set(actor="user:1", tenant_id=victim.pk, project="theirs", monthly_tokens=1000)
    assert theirs.pk == future
    return Tenant.objects.get(pk=mine.pk), victim, theirs


def test_an_edited_backup_cannot_plant_history_on_another_workspaces_future_budget(unblocked, tmp_path):  # noqa: F811
    """A budget entry whose object_pk was no row of the workspace was accepted when some entry of
    that id *in the backup itself* named the workspace's tenant_id, so an entry naming the budget
    id the sequence hands out next became the history of the next workspace's budget. Only
    entries of the rows the restore loaded are kept now."""
    _mine, _victim, theirs = _planted(tmp_path)
    reprs = [entry[4] for entry in entries_of("billing", "budget", str(theirs.pk))]
    assert "planted by another workspace's backup" not in reprs, reprs


def test_purging_the_restored_workspace_leaves_the_other_workspaces_budget_history(unblocked, tmp_path):  # noqa: F811
    """The planted entry named `mine`'s tenant_id, so the purge's condition ("every entry of a
    budget whose recorded creation named the tenant") took `victim`'s budget for one of
    `mine`'s: purging `mine` deleted the history of `victim`'s live budget."""
    mine, _victim, theirs = _planted(tmp_path)
    own = [
        e for e in entries_of("billing", "budget", str(theirs.pk)) if e[4] != "planted by another workspace's backup"
    ]
    assert own, "the victim's budget_set recorded its creation"
    purge(mine)
    after = entries_of("billing", "budget", str(theirs.pk))
    assert all(e in after for e in own), after


@pytest.mark.parametrize("fallback", [True, False])
def test_an_erasure_registered_before_a_secret_key_rotation(unblocked, tmp_path, fallback):  # noqa: F811
    """The register holds a keyed digest of the address, which a restore matched under
    SECRET_KEY alone (no fallbacks could be configured): once FOUNDRY_SECRET_KEY was rotated, a
    restore skipped every erasure registered before, silently. With the old key in
    FOUNDRY_SECRET_KEY_FALLBACKS (Django's rotation) it is made again; without, the ids are
    named for the operator, never erased on the id alone."""
    tenant = workspace_create()
    viewer = f"viewer@{tenant.slug}.test"
    with schema_context(tenant.schema_name):
        viewer_id = User.objects.get(email=viewer).pk
    made = backup_of(tenant, tmp_path)
    erase(tenant, viewer)
    purge(tenant)
    old = django_settings.SECRET_KEY
    with override_settings(
        SECRET_KEY="a-rotated-secret-key-" + "x" * 40, SECRET_KEY_FALLBACKS=[old] if fallback else []
    ):
        out, err = restore(made)
    with schema_context(tenant.schema_name):
        still_there = User.objects.filter(email=viewer).exists()
    if fallback:
        assert not still_there and anywhere(tenant.schema_name, viewer) == [], (out, err)
    else:
        assert still_there and f"user:{viewer_id} (the backup's address for them is not the erased person's" in err


def test_an_id_given_to_another_person_in_the_backup_is_not_erased(unblocked, tmp_path):  # noqa: F811
    """Ids are given again after a restore from an older backup: an erasure registered for
    `user:N` of one timeline must not erase the backup's `user:N`, another person. Registered
    here for the viewer's id with another address's digest (as that timeline's person had)."""
    tenant = workspace_create()
    viewer = f"viewer@{tenant.slug}.test"
    with schema_context(tenant.schema_name):
        viewer_id = User.objects.get(email=viewer).pk
    made = backup_of(tenant, tmp_path)
    purge(tenant)
    with schema_context("public"):
        _erasure_register(
            tenant.pk, f"carol@{tenant.slug}.test", [f"user:{viewer_id}"], actor="cli:erase_member", request=None
        )
    out, err = restore(made)
    with schema_context(tenant.schema_name):
        assert User.objects.filter(email=viewer).exists()
    assert "Made again" not in out and f"user:{viewer_id} (the backup's address" in err
