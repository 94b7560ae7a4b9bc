"""Transaction-scoped advisory locks named by text: what two requests take turns on when the row
they would lock may not exist yet (a first save, a first budget), until the transaction ends."""

from django.db import connection


def xact_lock(name: str) -> None:
    """Wait for, then hold to the end of this transaction, the lock called `name` (a hash of it:
    two names may share a lock, which only makes them take turns)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])


def xact_lock_shared(name: str) -> None:
    """The lock called `name`, shared: held by any number at once, taking turns only with its
    holder by `xact_lock` (who waits for every shared holder, and they for it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(hashtext(%s))", [name])
