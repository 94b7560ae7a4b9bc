"""The daily backup job, failing for a reason outside BackupError, is still a recorded failure."""

import pytest
from django.conf import settings as django_settings

from apps.lifecycle import tasks
from tests.conftest import audit_events


def test_backup_job_whose_role_cannot_connect_is_recorded_as_failed(
    django_db_setup, django_db_blocker, settings, tmp_path
):
    """docs/operations/disaster-recovery.md: "Every backup (the job's and the command's) is recorded
    in the platform's audit chain: ... a failure as `lifecycle.backup.failed`" — whatever made it
    fail: here the backup role's password rotated (PostgreSQL refusing the connection alike: too
    many clients, pg_hba), a psycopg.OperationalError, not one of the backup's own errors."""
    db = django_settings.DATABASES["default"]
    settings.FOUNDRY_BACKUP_DIR = str(tmp_path)
    settings.FOUNDRY_BACKUP_DATABASE_URL = (
        f"postgres://foundry_backup:wrong-password@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    with django_db_blocker.unblock():
        before = len(audit_events("public", action="lifecycle.backup.failed"))
        with pytest.raises(Exception) as failed:
            tasks.backup()
        after = audit_events("public", action="lifecycle.backup.failed")
    assert list(tmp_path.iterdir()) == []
    assert len(after) == before + 1, f"no lifecycle.backup.failed recorded; the job raised {failed.value!r}"


def test_backup_failure_record_does_not_carry_a_fragment_of_the_backup_role_password(
    django_db_setup, django_db_blocker, settings, tmp_path
):
    """A backup failure is recorded in the platform's audit chain (append-only, signed, shipped to
    the SIEM: nothing written there can be taken back) without what the error quotes: a backup URL
    whose password holds an unescaped "/" makes django-environ raise `ValueError: Port could not be
    cast to integer value as '<first part of the password>'`; only the error's type is recorded."""
    import pytest

    from apps.lifecycle import tasks
    from tests.conftest import audit_events

    secret = "Zq9hunterSecret"
    settings.FOUNDRY_BACKUP_DIR = str(tmp_path)
    settings.FOUNDRY_BACKUP_DATABASE_URL = f"postgres://foundry_backup:{secret}/more@127.0.0.1:5432/foundry"
    with django_db_blocker.unblock():
        before = len(audit_events("public", action="lifecycle.backup.failed"))
        with pytest.raises(Exception):  # noqa: B017 - whatever the backup raises
            tasks.backup()
        after = audit_events("public", action="lifecycle.backup.failed")
    assert len(after) == before + 1, "test setup: the failure is recorded"
    recorded = str(after[-1].data)
    assert secret not in recorded, f"the backup role's password is in the audit trail: {recorded}"
