"""A cloned tenant schema must be indistinguishable from one built by running migrations, made
from the base's definition (pg_dump's) or, without a current one, by the clone function."""

import logging

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.tenants.models import BaseSchemaDefinition
from apps.tenants.schemas import (
    DefinitionUnusable,
    _base_dump,
    _definition_try,
    base_definition_capture,
    dump_definition,
    schema_create,
    schema_shape,
)
from apps.tenants.services import tenant_provision

# Beside the schema's shape (schema_shape, which the definition's own check compares): its rows.
ROW_QUERIES = {
    "migrations": "SELECT app, name FROM {schema}.django_migrations ORDER BY 1, 2",
    "content_types": "SELECT app_label, model FROM {schema}.django_content_type ORDER BY 1, 2",
    "permissions": """SELECT ct.app_label, p.codename FROM {schema}.auth_permission p
                      JOIN {schema}.django_content_type ct ON ct.id = p.content_type_id ORDER BY 1, 2""",
}


def _catalog(schema: str) -> dict[str, list[tuple]]:
    connection.set_schema_to_public()
    out = schema_shape(schema)
    with connection.cursor() as cursor:
        for name, sql in ROW_QUERIES.items():
            cursor.execute(sql.replace("{schema}", f'"{schema}"'))
            out[name] = cursor.fetchall()
    return out


@pytest.mark.parametrize(("method", "made"), [("clone", "definition"), ("function", "function")])
def test_a_cloned_schema_equals_a_migrated_one(db, method, made):
    """Tables, columns (identity included), indexes, constraints, sequences (types, bounds, last
    values), triggers, owners, grants, row counts and the migration, content type and permission
    rows: the same whichever way the schema was made."""
    assert schema_create("cloned", method=method) == made
    assert schema_create("migrated", method="migrate") == "migrate"
    cloned, migrated = _catalog("cloned"), _catalog("migrated")
    assert cloned["columns"], "the clone has no tables"
    assert ("catalog_version", "catalog_version_append_only") in {row[:2] for row in cloned["triggers"]}
    assert any(row[6] == "YES" for row in cloned["columns"]), "no identity column compared"
    for part in cloned:
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


@pytest.fixture
def base_migrated_by_hand(db):
    """A migration recorded in the base without migrate_platform (so without a new definition).
    The row goes with the test's transaction; its id's sequence, which does not, is put back."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value, is_called FROM _foundry_base.django_migrations_id_seq")
        before = cursor.fetchone()
        cursor.execute(
            "INSERT INTO _foundry_base.django_migrations (app, name, applied) VALUES ('runs', '9999_by_hand', now())"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval('_foundry_base.django_migrations_id_seq', %s, %s)", before)


def test_a_clone_runs_the_base_definition_unless_the_base_has_moved_on(db, caplog, request):
    """The test database's base was migrated by base_schema_prepare, which took its definition: a
    clone runs it. A base migrated since (its applied migrations no longer those the definition
    was taken at) is cloned by the clone function, and the clone records that migration too."""
    assert schema_create("bydefinition", method="clone") == "definition"
    request.getfixturevalue("base_migrated_by_hand")
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


def _snapshot() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0]


def test_a_failing_pg_dump_is_reported_with_its_message(db):
    with override_settings(TENANT_BASE_SCHEMA="_foundry_nonesuch"), pytest.raises(DefinitionUnusable) as failed:
        _base_dump(_snapshot())
    assert str(failed.value) == "pg_dump failed: pg_dump: error: no matching schemas were found"


def test_pg_dump_connects_with_the_database_url_s_parameters(db, settings, monkeypatch):
    """DATABASE_URL's libpq parameters (sslmode, certificates, target_session_attrs …) are pg_dump's
    too: a parameter this primary server cannot meet makes pg_dump fail, as the application would."""
    assert "CREATE TABLE _foundry_base.accounts_user" in _base_dump(_snapshot())
    monkeypatch.setitem(settings.DATABASES["default"]["OPTIONS"], "target_session_attrs", "standby")
    with pytest.raises(DefinitionUnusable) as failed:
        _base_dump(_snapshot())
    assert "server is not in hot standby mode" in str(failed.value)


def test_a_dump_naming_the_base_other_than_as_a_schema_is_refused():
    """A clone replaces every mention of the base's name: one inside a value would be rewritten."""
    good = "SET row_security = off;\nCREATE SCHEMA _foundry_base;\nCREATE TABLE _foundry_base.t (x text);\n"
    assert dump_definition(good) == "CREATE SCHEMA _foundry_base;\nCREATE TABLE _foundry_base.t (x text);\n"
    with pytest.raises(DefinitionUnusable):
        dump_definition(good + "INSERT INTO _foundry_base.t VALUES ('_foundry_base');\n")


def test_only_pg_dump_s_own_lines_are_left_out_not_lines_inside_a_value():
    """pg_dump's header (comments, \\restrict, its session's settings) and trailer go; everything
    between stays whole, a value whose lines look like them included ('C:\\' is a whole value with
    standard_conforming_strings, which pg_dump sets)."""
    body = (
        "CREATE SCHEMA _foundry_base;\n\n-- Name: t; Type: TABLE\n\n"
        "CREATE TABLE _foundry_base.t (x text);\n\n"
        "INSERT INTO _foundry_base.t VALUES ('C:\\'), ('line one\n-- not a comment\n\\restrict no\n'), ('it''s');\n\n"
        "CREATE FUNCTION _foundry_base.f() RETURNS int LANGUAGE plpgsql AS $body$\nBEGIN\nRETURN 1;\nEND\n$body$;"
    )
    dump = (
        "--\n-- PostgreSQL database dump\n--\n\n\\restrict AbC123\n\n"
        "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n"
        f"{body}\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict AbC123\n\n"
    )
    assert dump_definition(dump) == body + "\n"


def test_a_dump_setting_the_session_between_its_statements_is_refused():
    """Such a setting would outlive the clone in its connection: not run, left to the clone function."""
    dump = "SET statement_timeout = 0;\nCREATE SCHEMA _foundry_base;\nSET default_table_access_method = heap;\n"
    with pytest.raises(DefinitionUnusable, match="session setting"):
        dump_definition(dump)
    with pytest.raises(DefinitionUnusable, match="session setting"):
        dump_definition("CREATE SCHEMA _foundry_base;\nSELECT pg_catalog.set_config('search_path', '', false);\n")


def test_a_definition_making_a_schema_unlike_the_base_is_not_kept(db):
    """Before it is kept, a definition is run (rolled back) and what it made compared with the base."""
    sql = BaseSchemaDefinition.objects.get().sql
    _definition_try(sql)
    with pytest.raises(DefinitionUnusable) as unlike:
        _definition_try(sql + "CREATE TABLE _foundry_base.extra (x int);\n")
    assert "relations" in str(unlike.value)
    with pytest.raises(DefinitionUnusable) as unlike:  # the same rows, one value changed
        _definition_try(sql + "UPDATE _foundry_base.django_content_type SET model = 'x' WHERE model = 'user';\n")
    assert str(unlike.value).endswith("(rows' contents differ)")
    with pytest.raises(DefinitionUnusable) as failing:
        _definition_try(sql + "SELECT 1 / 0;\n")
    assert "division by zero" in str(failing.value)
    with connection.cursor() as cursor:  # nothing of the tries is left
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname = '_foundry_probe'")
        assert cursor.fetchone() == (0,)


def test_a_definition_failing_at_a_clone_leaves_the_clone_to_the_clone_function(db, caplog):
    BaseSchemaDefinition.objects.update(sql=BaseSchemaDefinition.objects.get().sql + "SELECT 1 / 0;\n")
    with caplog.at_level(logging.ERROR, logger="apps.tenants.schemas"):
        assert schema_create("afterfailure", method="clone") == "function"
    assert "division by zero" in caplog.text
    assert not BaseSchemaDefinition.objects.exists()  # dropped: not tried again by every workspace
    assert schema_create("migrated", method="migrate") == "migrate"
    assert _catalog("afterfailure") == _catalog("migrated")


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
