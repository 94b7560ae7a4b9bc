"""A cloned tenant schema must be indistinguishable from one built by running migrations."""

from django.db import connection

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


def test_a_cloned_schema_equals_a_migrated_one(db):
    tenant_provision(slug="cloned", name="Cloned", owner_email="o@c.test", method="clone")
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
