"""Audit migrations on a database that holds data (found by a review of the migrations: 0019
undid 0015's locks in the purge, and reversing to 0004 left an append that read what 0005's
reverse drops).

These tests migrate the public schema of the session's test database back and forward as its
owner (as `migrate_platform` does) and always leave it at the latest migration, grants restored.
"""

import threading
import time

import psycopg
from django.core.management import call_command
from django.db import connection

from apps.audit.services import audit_record
from apps.audit.verify import audit_verify
from apps.lifecycle.deletion import tenant_deletion_schedule
from apps.tenants.models import Tenant
from foundry.db.roles import app_role_grant, as_owner, definer_functions_restrict
from tests.conftest import test_database_url

OPERATOR = "operator:1"


def _audit_migrate(target: str) -> None:
    with as_owner():
        connection.set_schema_to_public()
        call_command("migrate_schemas", "audit", target, shared=True, interactive=False, verbosity=0)
    connection.set_schema_to_public()


def _back_to_latest() -> None:
    with as_owner():
        connection.set_schema_to_public()
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        app_role_grant()
        definer_functions_restrict()
    connection.set_schema_to_public()


def _purge_definition() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('public.audit_chain_purge(bigint)'::regprocedure)")
        return cursor.fetchone()[0]


def test_audit_0019_keeps_the_chain_lock_0015_gave_the_purge(db):
    """0015 made `audit_chain_purge` take the chain's advisory lock and its head row FOR UPDATE
    before deleting anything (a checkpoint signed while the purge ran was left behind). 0019
    rebuilt the function from 0009's text, not 0015's, which undid that on every database migrated
    past it; 0019 now starts from 0015's text and 0022 puts it back where the old one ran. The
    function at the latest migration holds 0015's locks."""
    definition = _purge_definition()
    assert "pg_advisory_xact_lock" in definition, "audit_chain_purge lost the chain's advisory lock (0015)"
    assert "FOR UPDATE" in definition, "audit_chain_purge lost the lock of the chain's head row (0015)"


def test_a_checkpoint_signed_while_the_purge_runs_is_purged_with_the_chain(fresh_tenant, django_db_blocker):
    """The race 0015 fixed, at the latest migration: a signer holding the chain's head row (FOR KEY
    SHARE, as audit_checkpoint_sign does) while the owner's purge starts must make the purge wait,
    so the checkpoint it then stores is deleted with the chain. Since 0019 the purge deletes the
    checkpoints first and waits only at the head's DELETE, so the signer's checkpoint, committed
    meanwhile, stays behind: an append-only row of a workspace that no longer exists."""
    tenant_id = fresh_tenant.pk
    with django_db_blocker.unblock():
        tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=0)
    url = test_database_url()
    signer = psycopg.connect(url)
    purger = psycopg.connect(url, autocommit=True)
    outcome: dict = {}
    try:
        signer.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(tenant_id)])
        seq, hash_ = signer.execute(
            "SELECT seq, hash FROM public.audit_auditchain WHERE tenant_id = %s FOR KEY SHARE", [tenant_id]
        ).fetchone()

        def purge():
            try:
                purger.execute("BEGIN")
                purger.execute("SELECT * FROM public.audit_chain_purge(%s)", [tenant_id]).fetchall()
                purger.execute("COMMIT")
                outcome["done"] = True
            except Exception as exc:  # noqa: BLE001
                outcome["error"] = exc

        thread = threading.Thread(target=purge)
        thread.start()
        time.sleep(1.0)  # the purge gets as far as it can while the signer holds the head
        signer.execute(
            "INSERT INTO public.audit_auditcheckpoint (tenant_id, seq, hash, signed_at, key_id, signature)"
            " VALUES (%s, %s, %s, now(), 'test1', 'sig')",
            [tenant_id, seq, hash_],
        )
        signer.commit()
        thread.join(30)
        assert not thread.is_alive()
        assert outcome == {"done": True}, outcome
        with purger.transaction():
            purger.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(tenant_id)])
            left = purger.execute(
                "SELECT count(*) FROM public.audit_auditcheckpoint WHERE tenant_id = %s", [tenant_id]
            ).fetchone()[0]
    finally:
        signer.close()
        purger.close()
    assert left == 0, f"{left} checkpoint(s) of purged chain {tenant_id} remain"


def _append_all(chains: list[int], action: str) -> None:
    for chain in chains:
        audit_record(action=action, actor="runs", chain=chain)


def test_audit_0021_back_and_forward_with_events_in_several_chains(django_db_setup, django_db_blocker):
    """`migrate audit 0020` and forward again on a trail holding events in several chains: the
    append works at 0020 and after, its result type comes back, and every chain verifies."""
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        chains = [0, *Tenant.objects.filter(slug__in=["acme", "globex"]).values_list("pk", flat=True)]
        _append_all(chains, "review.before")
        try:
            _audit_migrate("0020_pruned_guard_function")
            with connection.cursor() as cursor:
                cursor.execute("SELECT to_regtype('public.audit_appended')")
                assert cursor.fetchone()[0] is None
            _append_all(chains, "review.at_0020")
            _audit_migrate("0021_append_without_statements")
            _append_all(chains, "review.after")
        finally:
            _back_to_latest()
        results = {chain: audit_verify(chain) for chain in chains}
    assert {chain: result.ok for chain, result in results.items()} == dict.fromkeys(chains, True), {
        chain: result.as_dict() for chain, result in results.items()
    }


def test_audit_back_to_0004_leaves_an_append_that_works(django_db_setup, django_db_blocker):
    """`migrate audit 0004_faster_append` reverses 0005, which drops the AuditChainBase table and
    the heads' `hash_tenant_id` column: its reverse puts 0004's `audit_append` back, which reads
    neither. It only revoked DELETE, and the function left in place read both: every append failed
    until the platform was migrated forward again."""
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        chain = Tenant.objects.get(slug="acme").pk
        error = None
        try:
            _audit_migrate("0004_faster_append")
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT seq, hash FROM public.audit_append(%s, 'service', 'runs', 'review.at_0004', '', '',"
                        " 'success', '', '', '', '{}', NULL, NULL)",
                        [chain],
                    )
            except Exception as exc:  # noqa: BLE001
                error = exc
        finally:
            _back_to_latest()
    assert error is None, f"audit_append at 0004 fails: {error}"
