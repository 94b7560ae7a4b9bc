"""Adding a non-negative counter column to a large table without reading its rows.

Django adds a PositiveIntegerField as `ADD COLUMN … DEFAULT 0 NOT NULL CHECK (col >= 0)`: the
column itself is only a catalog change (a constant default), but PostgreSQL checks the new CHECK
against every row, while the ALTER holds the table's ACCESS EXCLUSIVE lock, so every read and
write of the release still serving waits for a full pass over the table. Here the CHECK is added
NOT VALID, with PostgreSQL's own name for the column's check: rows written from now on are
checked; the rows there already hold the default, 0. A later migration validates it
(`counter_validated`), in a transaction of its own, under SHARE UPDATE EXCLUSIVE: reads and
writes go on meanwhile."""

from django.db import migrations
from django.db.models import Field


def counter_added(model_name: str, name: str, field: Field, *, table: str, column_type: str, keep_default: bool):
    """AddField of `field` (a Positive*IntegerField defaulting to 0) as a migration operation that
    reads no row of `table`; `keep_default`: the default stays in the database (db_default)."""
    check = f"{table}_{name}_check"
    sql = [
        f'ALTER TABLE "{table}" ADD COLUMN "{name}" {column_type} DEFAULT 0 NOT NULL',
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{check}" CHECK ("{name}" >= 0) NOT VALID',
    ]
    if not keep_default:
        sql.append(f'ALTER TABLE "{table}" ALTER COLUMN "{name}" DROP DEFAULT')
    return migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RunSQL(";\n".join(sql), f'ALTER TABLE "{table}" DROP COLUMN "{name}"')],
        state_operations=[migrations.AddField(model_name=model_name, name=name, field=field)],
    )


def counter_validated(table: str, name: str):
    """Validate the check `counter_added` added NOT VALID (a no-op for one already valid)."""
    return migrations.RunSQL(
        f'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{table}_{name}_check"', migrations.RunSQL.noop
    )
