"""A backup worker killed mid-dump leaves its work directory behind; the next backup of that scope
removes it (docs/operations/disaster-recovery.md, "Atomic")."""


def test_a_backup_retried_after_its_worker_was_killed_mid_dump_leaves_no_partial_dump_behind(
    django_db_setup, django_db_blocker, tmp_path
):
    """A worker killed mid-dump (hard time limit, OOM, a redeploy: SIGKILL, so backup_create's
    `finally: shutil.rmtree(work)` never runs) leaves its hidden `.partial-*` directory holding a
    dump as large as the database. The lock is let go (docs/operations/disaster-recovery.md, "a
    worker lost mid-dump ... holds nothing back") and the next run writes a new backup, but no run
    ever removes the dead one's work directory, and rotation only lists complete files: every
    crash would leak a whole dump's worth of disk for ever. The next backup of the scope (holding
    its lock, so no live backup owns it) clears it; another scope's is left alone."""
    import os
    import time

    from apps.lifecycle.backup import backup_run, tenant_scope
    from apps.tenants.models import Tenant

    with django_db_blocker.unblock():
        acme = Tenant.objects.get(slug="acme")
    crashed = tmp_path / f".partial-{tenant_scope(acme)}.k1ll3d"  # what backup_create's mkdtemp left
    crashed.mkdir(mode=0o700)
    # Another workspace's, whose slug starts like acme's scope: not acme's to remove.
    theirs = tmp_path / f".partial-{tenant_scope(acme)}-id999.l1v3"
    theirs.mkdir(mode=0o700)
    (crashed / "schema.dump").write_bytes(b"\0" * 1024 * 1024)
    old = time.time() - 3 * 86400
    os.utime(crashed / "schema.dump", (old, old))
    os.utime(crashed, (old, old))

    with django_db_blocker.unblock():
        for _ in range(2):  # the retry, and the next day's
            made, _ = backup_run(directory=tmp_path, keep=1, tenant=acme)
            assert made.path.exists()
    assert not crashed.exists(), "the killed worker's partial dump is still on disk"
    assert theirs.exists()
