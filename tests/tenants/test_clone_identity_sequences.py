"""A cloned tenant's identity sequences are the ones a migrated schema has (docs/tenancy.md;
apps/tenants/schemas.py `_sequence_types_align`)."""

from auditlog.models import LogEntry
from django.db import connection, models
from django_tenants.utils import schema_context

from apps.tenants.services import tenant_provision

INT_MAX = 2**31 - 1


def _widen_and_allocate(schema: str) -> int:
    """Run what a later migration AutoField -> BigAutoField does, then take an id past 2**31-1."""
    old = LogEntry._meta.get_field("id")
    new = models.BigAutoField(primary_key=True, auto_created=True, serialize=False, verbose_name="ID")
    new.set_attributes_from_name("id")
    new.model = LogEntry
    with schema_context(schema):
        with connection.cursor() as cursor:  # the provisioning's rows, same transaction: settle their FK checks
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with connection.schema_editor() as editor:
            editor.alter_field(LogEntry, old, new)
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('auditlog_logentry', 'id'), %s)", [INT_MAX])
            cursor.execute("SAVEPOINT widen")
            try:
                cursor.execute("SELECT nextval(pg_get_serial_sequence('auditlog_logentry', 'id'))")
                return cursor.fetchone()[0]
            except Exception as error:  # noqa: BLE001 - reported in the assertion
                cursor.execute("ROLLBACK TO SAVEPOINT widen")
                return repr(error)


def test_a_cloned_integer_identity_widened_to_bigint_allocates_past_2_31_like_a_migrated_one(db):
    """Integer identity columns (auth_group, auth_permission, django_content_type,
    auditlog_logentry) get an integer sequence when migrated; the clone function re-creates them
    as bigint sequences with MAXVALUE 2147483647 (information_schema.sequences hides identity
    sequences, so tests/tenants/test_schema_clone.py did not see it), which the clone then puts
    back to integer. When a later migration widens the column to bigint, PostgreSQL widens an
    integer sequence's maximum with it but left the clone's explicit one: cloned tenants (every
    real tenant) failed every insert past 2**31-1 with "reached maximum value"."""
    tenant_provision(slug="cloned", name="Cloned", owner_email="o@c.test", method="clone")
    tenant_provision(slug="migrated", name="Migrated", owner_email="o@m.test", method="migrate")
    assert _widen_and_allocate("migrated") == INT_MAX + 1
    assert _widen_and_allocate("cloned") == INT_MAX + 1


def test_a_tenant_cloned_before_the_fix_gets_its_sequence_types_back_when_migrated(db):
    """Tenants cloned before the clone kept sequence types (every real tenant then) are repaired
    by a migration (accounts 0004) that runs in each tenant schema: their identity sequences are
    their columns' type again, and a later widening allocates past 2**31-1 there too."""
    from importlib import import_module

    align = import_module("apps.accounts.migrations.0004_sequence_types").sequence_types_align
    tenant_provision(slug="clonedbefore", name="Cloned before", owner_email="o@c.test", method="clone")
    with schema_context("clonedbefore"), connection.cursor() as cursor:
        for table in ("auth_group", "auditlog_logentry"):  # as the clone left them before the fix
            cursor.execute(f"ALTER SEQUENCE {table}_id_seq AS bigint MAXVALUE {INT_MAX}")
        with connection.schema_editor() as editor:
            align(None, editor)
        cursor.execute(
            "SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid IN"
            " ('auth_group_id_seq'::regclass, 'auditlog_logentry_id_seq'::regclass)"
        )
        assert [row[0] for row in cursor.fetchall()] == ["integer", "integer"]
    assert _widen_and_allocate("clonedbefore") == INT_MAX + 1
