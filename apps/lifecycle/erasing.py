"""The one way to delete append-only rows (usage ledger, steps; the audit trail only through its
owner's functions, apps/audit/migrations/0008, where the owner role is configured): inside `erasing()`;
and to rewrite a member's personal data in them (catalog versions' authors): inside
`pseudonymising()`.

The guard triggers (public.foundry_refuse_change) let a DELETE through only in a transaction
that has set `foundry.erasing` to 'on', an UPDATE only where it is 'personal' (never on the
audit trail); TRUNCATE stays refused. Only retention, purge and erasure (this app) enter them.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def _erasing_mode(mode: str) -> Iterator[None]:
    """A transaction (a savepoint, nested) with `foundry.erasing` = mode; the value it had is
    put back when the block ends, so an outer transaction does not go on erasing."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(current_setting('foundry.erasing', true), ''),"
                " set_config('foundry.erasing', %s, true)",
                [mode],
            )
            previous = cursor.fetchone()[0]
        yield
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('foundry.erasing', %s, true)", [previous])


def erasing():
    """A transaction in which append-only rows may be deleted (and nothing else is relaxed)."""
    return _erasing_mode("on")


def pseudonymising():
    """A transaction in which append-only rows (but for the audit trail's) may be updated, to
    replace a member's name and email by a pseudonym; nothing may be deleted."""
    return _erasing_mode("personal")
