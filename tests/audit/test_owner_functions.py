"""The audit trail's owner functions (apps/audit/migrations/0008_owner_erasure.py): SECURITY
DEFINER, so whoever may EXECUTE them deletes from the trail as the tables' owner.

docs/audit.md: the application's role may not DELETE from the trail; "retention, import and a
workspace's purge call the owner's functions: `audit_chain_prune` cuts only up to a signed
checkpoint [...] and `audit_chain_purge` takes a whole chain only of a workspace scheduled for
deletion". docs/operations/deployment.md: the backup role is "BYPASSRLS and read-only".
"""

import os
import secrets
import uuid

import psycopg
import pytest
from django.db import connection

from foundry.db.roles import app_role, owner_role

OWNER_FUNCTIONS = ("audit_chain_prune", "audit_chain_purge", "audit_chain_head_drop")


@pytest.fixture(scope="module")
def backup_role_url(django_db_setup):
    """A role made exactly as docs/operations/disaster-recovery.md says the backup role is made:
    `CREATE ROLE foundry_backup LOGIN PASSWORD '…' BYPASSRLS IN ROLE pg_read_all_data` — read-only."""
    superuser = os.environ.get("FOUNDRY_TEST_PG_SUPERUSER")
    assert superuser, "FOUNDRY_TEST_PG_SUPERUSER is not set (bin/dev test sets it)"
    name, password = f"rrls16_backup_{uuid.uuid4().hex[:8]}", secrets.token_hex(16)
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' BYPASSRLS IN ROLE pg_read_all_data")
    db = connection.settings_dict
    yield name, f"postgres://{name}:{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f"DROP ROLE {name}")


def test_only_the_app_role_may_execute_the_owners_security_definer_functions(db, backup_role_url):
    """The owner's SECURITY DEFINER functions are executable by the app role (and their owner)
    only, not by PUBLIC, PostgreSQL's default: the documented read-only backup role, or any other
    role of the cluster, cannot delete audit events, checkpoints or chain heads through them."""
    if owner_role() is None:
        pytest.skip("one role owns everything: nothing runs as another owner")
    role, _ = backup_role_url
    allowed = {app_role(), owner_role()}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, p.oid::regprocedure::text, has_function_privilege(%s, p.oid, 'EXECUTE'),"
            " coalesce(p.proacl::text, '(default: EXECUTE to PUBLIC)')"
            " FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef ORDER BY 1",
            [role],
        )
        rows = cursor.fetchall()
    assert {name for name, *_ in rows} >= set(OWNER_FUNCTIONS)
    executable = {signature: acl for _, signature, may, acl in rows if may}
    assert not executable, (
        f"a read-only role ({role}, neither {sorted(allowed)}) may EXECUTE the owner's"
        f" SECURITY DEFINER functions: {executable}"
    )


def test_the_read_only_backup_role_cannot_delete_a_chain_head(acme, backup_role_url):
    """The read-only backup role, calling `audit_chain_head_drop` on a workspace's committed chain
    head, is refused (no EXECUTE), and the head stays."""
    if owner_role() is None:
        pytest.skip("one role owns everything")
    _, url = backup_role_url
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        count = "SELECT count(*) FROM public.audit_auditchain WHERE tenant_id = %s"
        cursor.execute(count, [acme.pk])
        assert cursor.fetchone() == (1,)  # the backup role reads everything (BYPASSRLS)
        try:
            cursor.execute("SELECT public.audit_chain_head_drop(%s)", [acme.pk])
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()
            return  # refused: as it should be
        cursor.execute(count, [acme.pk])
        left = cursor.fetchone()[0]
        conn.rollback()
    pytest.fail(f"the read-only backup role deleted acme's chain head as the owner (rows left: {left})")
