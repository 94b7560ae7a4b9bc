"""Races in the data lifecycle: two imports at once, and a purge while an export is being written.
Each test drives real threads on their own database connections (tests/races/conftest.py) against
committed data, and forces the interleaving that would break the invariant."""

import io
import threading
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.lifecycle import archive, erasure, exports
from apps.lifecycle.archive import ArchiveError, tenant_import
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.lifecycle.exports import export_storage_prefix
from apps.lifecycle.models import Export
from apps.tenants.models import Domain, Tenant
from tests.conftest import audit_events, tenant_user
from tests.lifecycle.test_archive import archive_of
from tests.races.conftest import Rendezvous, run_together


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def test_two_imports_of_an_archive_with_a_custom_domain_at_once_both_succeed(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """docs/export.md (Import, step 2): custom domains come along "when they are free here", the
    others are left behind and listed (`domains_taken`). Two imports attaching the same free domain
    at once both succeed: the second finds it taken."""
    tenant = fresh_tenant
    custom = f"agents.{tenant.slug}.example"
    slugs = [f"c{uuid.uuid4().hex[:10]}", f"c{uuid.uuid4().hex[:10]}"]
    with django_db_blocker.unblock():
        Domain.objects.create(domain=custom, tenant=tenant, is_primary=False)
        data, _ = archive_of(tenant)
        # The archive is restored elsewhere (its workspace deleted, or the domain moved since): free here.
        Domain.objects.filter(domain=custom).delete()

        meet = Rendezvous()
        attach = archive._domains_attach

        def attach_meeting(loader, new_tenant):  # both past verification, inside their transactions
            meet.wait()
            return attach(loader, new_tenant)

        monkeypatch.setattr(archive, "_domains_attach", attach_meeting)
        results = run_together(*(lambda s=s: tenant_import(io.BytesIO(data), slug=s) for s in slugs))
        imported = set(Tenant.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        owner = Domain.objects.filter(domain=custom).values_list("tenant__slug", flat=True).first()
    assert meet.met, "the two imports did not meet before attaching domains"
    errors = [exc for _, exc in results if exc is not None]
    described = [f"{e.code}: {e.message}" if isinstance(e, ArchiveError) else repr(e) for e in errors]
    assert not errors, f"a sound archive's import was refused when run alongside another: {described}"
    assert imported == set(slugs)
    assert owner in slugs


def test_a_purge_while_an_export_is_being_written_leaves_no_archive_of_the_purged_workspace(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """A purge erases the workspace's stored files too: an export saving its archive while the purge
    runs (the archive is saved while the workspace's row is held) leaves none behind."""
    tenant = fresh_tenant
    prefix = export_storage_prefix(tenant.schema_name)
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            job = Export.objects.create(created_by="owner")
        read = threading.Event()
        purged = threading.Event()
        sha256 = exports._sha256

        def sha256_after_purge(handle):  # the archive is read (snapshot over), not yet saved
            read.set()
            purged.wait(30)
            return sha256(handle)

        monkeypatch.setattr(exports, "_sha256", sha256_after_purge)

        def write():
            with schema_context(tenant.schema_name):
                return exports.export_run(export_id=str(job.pk))

        def purge():
            assert read.wait(60), "the export never finished reading"
            try:
                doomed = tenant_deletion_schedule(tenant=tenant, actor="operator:test", grace_days=0)
                return tenant_purge(tenant=doomed, actor="operator:test")
            finally:
                purged.set()

        results = run_together(write, purge)
        gone = not Tenant.objects.filter(pk=tenant.pk).exists()
        left = default_storage.listdir(prefix)[1] if default_storage.exists(prefix) else []
    assert results[1][1] is None, f"the purge failed: {results[1][1]!r}"
    assert gone
    assert not left, (
        f"the purged workspace's export {left} was written to {prefix} after the purge deleted its files "
        f"(export outcome: {results[0]!r})"
    )


def test_the_same_erasure_sent_twice_at_once_records_one_member_erased(fresh_tenant, django_db_blocker, monkeypatch):
    """docs/lifecycle.md: an erasure appends `member.erased` with what it rewrote. Sent again once
    it is done, the same erasure is refused (`person_unknown`: nobody with that address is or was
    a member any more) and records nothing. Sent twice at once (POST /api/v1/members/erase retried,
    or the console's Erase double-clicked), the second waits for the first's locks and reads the
    person again under them: refused alike, not a second `member.erased` (member_removed false)
    for the one erasure."""
    tenant = fresh_tenant
    email = f"viewer@{tenant.slug}.test"
    with django_db_blocker.unblock():
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        meet = Rendezvous()
        held = erasure.exports_held

        def held_meeting():  # both have read the member, neither holds the workspace's locks yet
            meet.wait()
            return held()

        monkeypatch.setattr(erasure, "exports_held", held_meeting)

        def erase():
            with schema_context(tenant.schema_name):
                return erasure.member_erase(actor=owner, email=email)

        results = run_together(erase, erase)
        with schema_context(tenant.schema_name):
            assert not User.objects.filter(email=email).exists()
        erased = audit_events(tenant.schema_name, action="member.erased")
    unexpected = [e for _, e in results if e is not None and not isinstance(e, ValidationError)]
    assert not unexpected, unexpected
    assert len(erased) == 1, f"{len(erased)} member.erased events for one erasure: {[e.data for e in erased]}"
