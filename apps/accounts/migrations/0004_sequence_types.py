"""Identity sequences of tenants cloned before the clone kept their types (apps/tenants/schemas.py
`_sequence_types_align`) are put back to their columns' types.

The clone function re-created every identity sequence as bigint with an explicit maximum of
2^31-1 (auth_group, auth_permission, django_content_type, auditlog_logentry). A later migration
that widens such a column to bigint lifts a migrated schema's maximum (an integer sequence at its
type's maximum follows the type) but not the clone's explicit one, so those tenants' inserts would
stop at 2^31-1. Runs in every tenant schema (and the base); a sequence already of its column's type
is left alone, so it changes nothing on a schema that was migrated, or cloned since.
"""

from django.db import migrations

_MISMATCHED = """
    SELECT sequence.seqrelid::regclass::text, format_type(attribute.atttypid, NULL)
      FROM pg_sequence sequence
      JOIN pg_class class ON class.oid = sequence.seqrelid
      JOIN pg_depend depend ON depend.classid = 'pg_class'::regclass AND depend.objid = sequence.seqrelid
                           AND depend.refclassid = 'pg_class'::regclass AND depend.deptype IN ('a', 'i')
      JOIN pg_attribute attribute ON attribute.attrelid = depend.refobjid AND attribute.attnum = depend.refobjsubid
     WHERE class.relnamespace = current_schema()::regnamespace
       AND attribute.atttypid IN ('smallint'::regtype, 'integer'::regtype)
       AND sequence.seqtypid <> attribute.atttypid
"""


def sequence_types_align(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(_MISMATCHED)
        for sequence, data_type in cursor.fetchall():
            cursor.execute(f"ALTER SEQUENCE {sequence} AS {data_type}")


class Migration(migrations.Migration):
    # On a schema being created the tables may not all be there yet: it is migrated, not cloned,
    # and has nothing to align.
    dependencies = [("accounts", "0003_email_domain_spelling")]

    operations = [migrations.RunPython(sequence_types_align, migrations.RunPython.noop)]
