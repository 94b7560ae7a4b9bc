"""Which chain the connection is on, and the Row-Level Security scope that shows it.

Rows of the shared (public-schema) tables under forced RLS are visible only inside
`rls_scope(tenant_id)`: a transaction whose `foundry.tenant_id` is set with `set_config(...,
true)` — local to that transaction, so a pooled or persistent connection never carries one
tenant's setting into another's work. Querysets must be evaluated inside the block.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

from apps.audit.models import PLATFORM


def chain_of_connection() -> int:
    """The chain of the schema the connection is on: its tenant's id, or PLATFORM on public.

    Not cached by schema name: a tenant deleted and provisioned again under the same slug is a
    new tenant with a new chain."""
    schema = connection.schema_name
    if schema == "public":
        return PLATFORM
    tenant = getattr(connection, "tenant", None)
    tenant_id = getattr(tenant, "pk", None) if getattr(tenant, "schema_name", None) == schema else None
    if tenant_id is None:
        from apps.tenants.models import Tenant

        tenant_id = Tenant.objects.filter(schema_name=schema).values_list("pk", flat=True).first()
        if tenant_id is None:
            raise LookupError(f"no tenant has schema {schema!r}")
    return tenant_id


@contextmanager
def rls_scope(tenant_id: int) -> Iterator[None]:
    """A transaction in which the shared tables show chain `tenant_id`'s rows only.

    Nested in an outer transaction it is a savepoint, and the setting the outer transaction had
    is put back when it ends (rolling back a savepoint puts it back by itself)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(current_setting('foundry.tenant_id', true), ''),"
                " set_config('foundry.tenant_id', %s, true)",
                [str(int(tenant_id))],
            )
            previous = cursor.fetchone()[0]
        yield
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('foundry.tenant_id', %s, true)", [previous])
