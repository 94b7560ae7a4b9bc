"""A cloned tenant schema must be indistinguishable from one built by running migrations, made
from the base's definition (pg_dump's) or, without a current one, by the clone function."""

import logging

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.tenants.models import BaseSchemaDefinition
from apps.tenants.schemas import DefinitionUnusable, _base_dump, base_definition_capture, dump_definition, schema_create
from apps.tenants.services import tenant_provision

CATALOG_QUERIES = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, character_maximum_length,
               numeric_precision, replace(coalesce(column_default, ''), %(schema)s || '.', '')
          FROM information_schema.columns WHERE table_schema = %(schema)s ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, replace(indexdef, %(schema)s || '.', '')
          FROM pg_indexes WHERE schemaname = %(schema)s ORDER BY 1, 2""",
    "constraints": """
        SELECT rel.relname, con.conname, con.contype,
               replace(pg_get_constraintdef(con.oid), %(schema)s || '.', '')
          FROM pg_constraint con
          JOIN pg_class rel ON rel.oid = con.conrelid
          JOIN pg_namespace ns ON ns.oid = rel.relnamespace
         WHERE ns.nspname = %(schema)s ORDER BY 1, 2, 3, 4""",
    "sequences": """
        SELECT sequence_name, data_type, start_value, increment
          FROM information_schema.sequences WHERE sequence_schema = %(schema)s ORDER BY 1""",
    "identity_sequences": """
        SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcycle
          FROM pg_sequence s
          JOIN pg_class c ON c.oid = s.seqrelid
          JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = %(schema)s ORDER BY 1""",
    "relations": """
        SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text, c.relpersistence,
               c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class')
          FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = %(schema)s ORDER BY 1""",
    "schema": """
        SELECT pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace WHERE nspname = %(schema)s""",
    "triggers": """
        SELECT c.relname, t.tgname, replace(pg_get_triggerdef(t.oid), %(schema)s || '.', '')
          FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = %(schema)s AND NOT t.tgisinternal ORDER BY 1, 2""",
    "migrations": "SELECT app, name FROM {schema}.django_migrations ORDER BY 1, 2",
    "content_types": "SELECT app_label, model FROM {schema}.django_content_type ORDER BY 1, 2",
    "permissions": """SELECT ct.app_label, p.codename FROM {schema}.auth_permission p
                      JOIN {schema}.django_content_type ct ON ct.id = p.content_type_id ORDER BY 1, 2""",
}


def _catalog(schema: str) -> dict[str, list[tuple]]:
    out = {}
    with connection.cursor() as cursor:
        for name, sql in CATALOG_QUERIES.items():
            cursor.execute(sql.replace("{schema}", f'"{schema}"'), {"schema": schema})
            out[name] = cursor.fetchall()
    return out


@pytest.mark.parametrize("method", ["clone", "function"])
def test_a_cloned_schema_equals_a_migrated_one(db, method):
    tenant_provision(slug="cloned", name="Cloned", owner_email="o@c.test", method=method)
    tenant_provision(slug="migrated", name="Migrated", owner_email="o@m.test", method="migrate")
    connection.set_schema_to_public()
    cloned, migrated = _catalog("cloned"), _catalog("migrated")
    assert cloned["columns"], "the clone has no tables"
    assert ("catalog_version", "catalog_version_append_only") in {row[:2] for row in cloned["triggers"]}
    for part in CATALOG_QUERIES:
        assert cloned[part] == migrated[part], part


def test_a_cloned_schema_allocates_fresh_ids(db):
    """Sequences continue after the copied rows instead of colliding with them."""
    tenant_provision(slug="cloned", name="Cloned", owner_email="o@c.test", method="clone")
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO "cloned".django_content_type (app_label, model) VALUES (%s, %s) RETURNING id',
            ["x", "y"],
        )
        (new_id,) = cursor.fetchone()
        cursor.execute('SELECT max(id) FROM "cloned".django_content_type WHERE app_label <> %s', ["x"])
        (max_copied,) = cursor.fetchone()
    assert new_id > max_copied


def _base_migrated_by_hand() -> None:
    """A migration recorded in the base without migrate_platform (so without a new definition)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO _foundry_base.django_migrations (app, name, applied) VALUES ('runs', '9999_by_hand', now())"
        )


def test_a_clone_runs_the_base_definition_unless_the_base_has_moved_on(db, caplog):
    """The test database's base was migrated by base_schema_prepare, which took its definition: a
    clone runs it. A base migrated since (its applied migrations no longer those the definition
    was taken at) is cloned by the clone function, and the clone records that migration too."""
    assert schema_create("bydefinition", method="clone") == "definition"
    _base_migrated_by_hand()
    with caplog.at_level(logging.WARNING, logger="apps.tenants.schemas"):
        assert schema_create("byfunction", method="clone") == "function"
    assert "no current definition" in caplog.text
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM byfunction.django_migrations WHERE name = '9999_by_hand'")
        assert cursor.fetchone() == (1,)


def test_a_definition_taken_inside_a_transaction_is_dropped_not_kept_stale(db, caplog):
    """pg_dump cannot see what the migrating transaction did: rather than keep a definition that
    may be stale, the capture drops it, with a warning, and clones use the clone function."""
    assert BaseSchemaDefinition.objects.exists()
    with caplog.at_level(logging.WARNING, logger="apps.tenants.schemas"):
        base_definition_capture()
    assert "inside a transaction" in caplog.text
    assert not BaseSchemaDefinition.objects.exists()
    assert schema_create("afterdrop", method="clone") == "function"


def test_a_failing_pg_dump_is_reported_with_its_message(db):
    with override_settings(TENANT_BASE_SCHEMA="_foundry_nonesuch"), pytest.raises(DefinitionUnusable) as failed:
        _base_dump()
    assert str(failed.value) == "pg_dump failed: pg_dump: error: no matching schemas were found"


def test_a_dump_naming_the_base_other_than_as_a_schema_is_refused():
    """A clone replaces every mention of the base's name: one inside a value would be rewritten."""
    good = "SET row_security = off;\nCREATE SCHEMA _foundry_base;\nCREATE TABLE _foundry_base.t (x text);\n"
    assert dump_definition(good) == "CREATE SCHEMA _foundry_base;\nCREATE TABLE _foundry_base.t (x text);\n"
    with pytest.raises(DefinitionUnusable):
        dump_definition(good + "INSERT INTO _foundry_base.t VALUES ('_foundry_base');\n")


def test_a_workspace_made_from_the_definition_holds_no_other_workspaces_rows(db):
    """The definition is the base's alone: a new workspace starts with none of another's rows,
    and the definition names no other schema."""
    tenant_provision(slug="zeta", name="Zeta", owner_email="owner@zeta.test", method="clone")
    with schema_context("zeta"):
        User.objects.create_user("member@zeta.test", "correct-horse-battery-staple")
    tenant_provision(slug="theta", name="Theta", owner_email="owner@theta.test", method="clone")
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM theta.accounts_user")
        assert cursor.fetchall() == [("owner@theta.test",)]
    sql = BaseSchemaDefinition.objects.get().sql
    assert "zeta" not in sql and "acme" not in sql and "@" not in sql
