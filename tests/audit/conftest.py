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
