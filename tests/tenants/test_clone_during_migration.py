"""A tenant provisioned while `migrate_platform` migrates the base schema is not half-migrated
(apps/tenants/schemas.py `schema_create`: the clone holds the base's django_migrations)."""

import threading
import time
import uuid

import psycopg
from django.db import connection, connections

from apps.tenants.services import tenant_provision


def _app_role_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"], port=s["PORT"], dbname=s["NAME"], user=s["USER"], password=s["PASSWORD"])


def test_a_clone_never_records_a_migration_whose_table_it_lacks(django_db_blocker):
    """docs/tenancy.md: a clone copies `django_migrations` so that it "needs no fake-migration
    pass" and `migrate_schemas` later applies only what is new. clone_schema() reads the base's
    table list first and copies django_migrations' rows later, each statement with a fresh
    snapshot; a base migration committing in between (migrate_platform migrates the base while
    the platform keeps running) left a tenant recording a migration whose table it lacked, which
    no later `migrate_platform` would create. Here a migration creating `runs_zz_new` commits
    while a clone waits (held at django_migrations to make the interleaving certain): the tenant
    has both the table and the record, or neither."""
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
            migrator.execute("LOCK TABLE _foundry_base.django_migrations IN ACCESS EXCLUSIVE MODE")
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
                assert has_table or not recorded, "the clone records a migration whose table it does not have"
        finally:
            migrator.rollback()
            migrator.execute("DROP TABLE IF EXISTS _foundry_base.runs_zz_new")
            migrator.execute("DELETE FROM _foundry_base.django_migrations WHERE name = '9999_zz_new'")
            migrator.commit()
            migrator.close()
