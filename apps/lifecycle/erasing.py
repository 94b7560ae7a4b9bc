"""The one way to delete append-only rows (usage ledger, audit trail, steps): inside `erasing()`.

The guard triggers (public.foundry_refuse_change) let a DELETE through only in a transaction
that has set `foundry.erasing`; UPDATE and TRUNCATE stay refused. Only retention and purge
(this app) enter it.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def erasing() -> Iterator[None]:
    """A transaction in which append-only rows may be deleted (and nothing else is relaxed)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('foundry.erasing', 'on', true)")
        yield
