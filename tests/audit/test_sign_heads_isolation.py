"""The beat job `audit.sign_heads` signs every chain in one loop (apps/audit/tasks.py). A chain
whose head row is locked elsewhere — a workspace being purged (audit_chain_purge takes the head
FOR UPDATE, then goes on deleting the workspace's public rows in the same transaction), or an
audit prune — must not hold back the signing of every other workspace's chain."""

import os
import threading
import time

import psycopg
import pytest
from django.db import connection, connections

from apps.audit import tasks as audit_tasks
from apps.tenants.models import Tenant
from tests.audit.conftest import SIGNING_SEED, app_connection, append


def superuser_connection(**kwargs) -> psycopg.Connection:
    params = psycopg.conninfo.conninfo_to_dict(os.environ["FOUNDRY_TEST_PG_SUPERUSER"])
    params["dbname"] = connection.settings_dict["NAME"]
    return psycopg.connect(**params, **kwargs)


@pytest.fixture
def unblocked(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield


def test_one_chains_locked_head_does_not_stop_the_other_chains_being_signed(unblocked, settings):
    """docs/audit.md ("Signed checkpoints"): every FOUNDRY_AUDIT_SIGN_INTERVAL the beat job signs
    the head of every chain that moved; the task itself says "one chain's failure never leaves
    the others unsigned". Here acme's head row is held FOR UPDATE by another transaction (as a
    purge of acme holds it while it deletes acme's public rows). globex's chain moved too and
    must be signed in that pass; instead the job waits on acme's row lock (no NOWAIT / SKIP
    LOCKED / lock_timeout) and globex — and every chain after acme — stays unsigned until the
    lock is released."""
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"rv1:{SIGNING_SEED}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = []
    acme = Tenant.objects.get(slug="acme")
    globex = Tenant.objects.get(slug="globex")
    with app_connection() as conn:
        append(conn, acme.pk, "review.beatjobs.moved")
        globex_seq = append(conn, globex.pk, "review.beatjobs.moved")

    holder = superuser_connection()  # a transaction left open, as a purge's is
    holder.execute("SELECT 1 FROM public.audit_auditchain WHERE tenant_id = %s FOR UPDATE", [acme.pk])

    def sign():
        try:
            audit_tasks.audit_sign_heads.apply()
        finally:
            connections.close_all()

    signer = threading.Thread(target=sign, daemon=True)
    signer.start()
    try:
        signed = False
        deadline = time.monotonic() + 15
        with superuser_connection(autocommit=True) as reader:
            while time.monotonic() < deadline and not signed:
                signed = bool(
                    reader.execute(
                        "SELECT 1 FROM public.audit_auditcheckpoint WHERE tenant_id = %s AND seq = %s",
                        [globex.pk, globex_seq],
                    ).fetchone()
                )
                time.sleep(0.25)
        assert signed, "globex's chain was not signed while acme's head row was locked by another transaction"
    finally:
        holder.rollback()
        holder.close()
        signer.join(30)
