"""A model's columns written out for hand-written SQL, in place of `*`.

A statement the server prepared keeps the result type it was prepared with. Under another
tenant's search path, or after a migration, `*` may stand for other columns (a schema a rolling
`migrate_schemas` has not reached yet), and the server refuses the statement ("cached plan must
not change result type"). The model's own columns name the same result everywhere."""

from django.db import connection, models


def columns_of(model: type[models.Model], alias: str) -> str:
    """`alias."column", …` for every concrete field of `model`, as Model.objects.raw reads them."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)
