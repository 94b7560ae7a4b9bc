"""Audit fixtures: a superuser connection (to play the attacker with database access), chains
of their own committed outside the test's transaction, and a signing key of the test's own."""

import base64
import os
import random

import psycopg
import pytest
from django.db import connection

from tests.conftest import test_database_url

SIGNING_SEED = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")


@pytest.fixture(autouse=True)
def signing_keys(settings):
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"test1:{SIGNING_SEED}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = []
    return settings.FOUNDRY_AUDIT_SIGNING_KEYS


def app_connection() -> psycopg.Connection:
    """A connection as the application role, autocommit: what it writes is committed at once."""
    return psycopg.connect(test_database_url(), autocommit=True)


@pytest.fixture
def superuser(db):
    """A superuser connection to the test database (RLS and triggers do not bind it when it says so)."""
    conninfo = os.environ.get("FOUNDRY_TEST_PG_SUPERUSER")
    assert conninfo, "FOUNDRY_TEST_PG_SUPERUSER is not set (bin/dev test sets it)"
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    params["dbname"] = connection.settings_dict["NAME"]
    with psycopg.connect(**params, autocommit=True) as conn:
        yield conn


def append(conn: psycopg.Connection, chain: int, action: str, *, details: str = "{}", actor: str = "user:1") -> int:
    """Append through the platform's own SQL function (what audit_record calls)."""
    row = conn.execute(
        "SELECT seq FROM public.audit_append(%s, 'user', %s, %s, '', '', 'success', '127.0.0.1', 'pytest', '',"
        " %s, NULL, NULL)",
        [chain, actor, action, details],
    ).fetchone()
    return row[0]


@pytest.fixture
def chain(db):
    """A committed chain of 10 events on a chain id of this test's own (no tenant needed)."""
    chain_id = random.randint(10**9, 2 * 10**9)
    with app_connection() as conn:
        for n in range(1, 11):
            append(conn, chain_id, f"thing.done.{n}", details=f'{{"n":{n}}}')
    return chain_id


def committed(function, *args, **kwargs):
    """Run `function` on a connection of its own (another thread), so what it writes is
    committed at once, outside the test's transaction — visible to the superuser connection."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def call():
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


_AGE = """
DO $$
DECLARE
    event record;
    previous text;
    hashed text;
    hash_id bigint := coalesce((SELECT hash_tenant_id FROM audit_auditchainbase WHERE tenant_id = {chain}), {chain});
BEGIN
    FOR event IN SELECT * FROM audit_auditevent WHERE tenant_id = {chain} ORDER BY seq LOOP
        previous := coalesce(previous, event.prev_hash);
        hashed := audit_event_hash(hash_id, event.seq, event.occurred_at - interval '{days} days', event.actor_type,
            event.actor_id, event.action, event.target_type, event.target_id, event.outcome, event.ip,
            event.user_agent, event.request_id, event.details, previous);
        UPDATE audit_auditevent SET occurred_at = event.occurred_at - interval '{days} days', prev_hash = previous,
               hash = hashed
         WHERE tenant_id = {chain} AND seq = event.seq;
        previous := hashed;
    END LOOP;
    UPDATE audit_auditchain SET hash = previous WHERE tenant_id = {chain};
END $$
"""


def chain_age(chain: int, days: int) -> None:
    """Every committed event of `chain` moved `days` back, hashes recomputed in order, as a
    superuser with the trail's triggers off: a chain written that long ago (the prune never
    takes the last day's events). Before any checkpoint of it is signed."""
    params = psycopg.conninfo.conninfo_to_dict(os.environ["FOUNDRY_TEST_PG_SUPERUSER"])
    with psycopg.connect(**{**params, "dbname": connection.settings_dict["NAME"]}) as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(_AGE.format(chain=int(chain), days=int(days)))
