"""A tenant provisioned while `migrate_platform` migrates the base schema is not half-migrated
(apps/tenants/schemas.py: migrating the base and cloning it take turns, BASE_LOCK)."""

import threading
import time
import uuid

import psycopg
import pytest
from django.db import connection, connections

from apps.tenants.schemas import BASE_LOCK
from apps.tenants.services import tenant_provision


def _app_role_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"], port=s["PORT"], dbname=s["NAME"], user=s["USER"], password=s["PASSWORD"])


@pytest.fixture(autouse=True)
def base_sequence_kept(django_db_blocker):
    """The base's django_migrations id sequence as it was: the migrations these tests record (and
    take back) move it, and sequences stay moved; clones copy it (tests/tenants/test_schema_clone.py)."""
    with django_db_blocker.unblock(), _app_role_connection() as conn:
        before = conn.execute("SELECT last_value, is_called FROM _foundry_base.django_migrations_id_seq").fetchone()
    yield
    with django_db_blocker.unblock(), _app_role_connection() as conn:
        conn.execute("SELECT setval('_foundry_base.django_migrations_id_seq', %s, %s)", before)


def test_a_clone_never_records_a_migration_whose_table_it_lacks(django_db_blocker):
    """docs/tenancy.md: a clone copies `django_migrations` so that it "needs no fake-migration
    pass" and `migrate_schemas` later applies only what is new. clone_schema() reads the base's
    table list first and copies django_migrations' rows later, each statement with a fresh
    snapshot; a base migration committing in between (migrate_platform migrates the base while
    the platform keeps running) left a tenant recording a migration whose table it lacked, which
    no later `migrate_platform` would create. Here a migration of the base, holding the lock
    migrate_platform takes, creates `runs_zz_new` and commits while a clone is asked for: the
    tenant has both the table and the record, or neither."""
    slug = f"r{uuid.uuid4().hex[:8]}"
    outcome: dict = {}

    def provision() -> None:
        try:
            outcome["slug"] = tenant_provision(slug=slug, name="Racer", owner_email=f"o@{slug}.test").tenant.slug
        except Exception as error:  # noqa: BLE001 - a refusal would be acceptable too
            outcome["error"] = repr(error)
        finally:
            connections.close_all()

    with django_db_blocker.unblock():
        migrator = _app_role_connection()
        try:
            # As migrate_platform migrates the base (base_schema_prepare): its lock first.
            migrator.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [BASE_LOCK])
            worker = threading.Thread(target=provision)
            worker.start()
            time.sleep(2)  # the clone has listed the base's tables and waits for django_migrations
            migrator.execute("CREATE TABLE _foundry_base.runs_zz_new (id int)")
            migrator.execute(
                "INSERT INTO _foundry_base.django_migrations (app, name, applied) VALUES ('runs', '9999_zz_new', now())"
            )
            migrator.commit()
            worker.join(60)
            if "slug" in outcome:
                connection.set_schema_to_public()
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT to_regclass('{slug}.runs_zz_new') IS NOT NULL,"
                        f" EXISTS (SELECT 1 FROM {slug}.django_migrations WHERE name = '9999_zz_new')"
                    )
                    has_table, recorded = cursor.fetchone()
                assert has_table and recorded, "the clone did not wait for the base's migration to end"
        finally:
            migrator.rollback()
            migrator.execute("DROP TABLE IF EXISTS _foundry_base.runs_zz_new")
            migrator.execute("DELETE FROM _foundry_base.django_migrations WHERE name = '9999_zz_new'")
            migrator.commit()
            migrator.close()


def test_provisioning_during_a_base_migration_does_not_deadlock(django_db_blocker):
    """A Django migration's transaction alters its tables first (ACCESS EXCLUSIVE) and records
    itself in django_migrations last; a clone that locked django_migrations before reading the
    base's tables, between the two, deadlocked with it (PostgreSQL aborted the provisioning or the
    migration). A migration run by hand, without migrate_platform's lock, and a clone both complete.
    Replayed with the statements of a Django migration's transaction, rolled back at the end."""
    slug = f"d{uuid.uuid4().hex[:8]}"
    outcome: dict = {}

    def provision() -> None:
        try:
            outcome["slug"] = tenant_provision(slug=slug, name="Racer", owner_email=f"o@{slug}.test").tenant.slug
        except Exception as error:  # noqa: BLE001 - reported below
            outcome["error"] = repr(error)
        finally:
            connections.close_all()

    migration_error = None
    with django_db_blocker.unblock():
        migrator = _app_role_connection()
        try:
            migrator.execute("SET statement_timeout = '30s'")
            migrator.execute("ALTER TABLE _foundry_base.accounts_user ADD COLUMN zz_review int")  # the migration's DDL
            worker = threading.Thread(target=provision)
            worker.start()
            time.sleep(2)  # the clone waits for accounts_user
            try:  # the migration records itself, as Django's executor does in the same transaction
                migrator.execute(
                    "INSERT INTO _foundry_base.django_migrations (app, name, applied)"
                    " VALUES ('accounts', '9999_zz_review', now())"
                )
            except psycopg.Error as error:
                migration_error = repr(error)
            migrator.rollback()
            worker.join(60)
        finally:
            migrator.rollback()
            migrator.close()
    assert migration_error is None and "error" not in outcome, (
        f"migration: {migration_error}; provisioning: {outcome.get('error')}"
    )
