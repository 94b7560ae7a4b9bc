"""Writers of one chain queue on an advisory lock of that chain, then move its head unopposed
(measured by bench/audit.py: appends to one chain from several processes).

They queued on the head row itself: each waiter for a row locked by another transaction first
takes the row's tuple lock, then waits for that transaction; when it commits, the tuple lock's
holder re-reads the row's newest version (EvalPlanQual), moves the head and releases the tuple
lock to the next waiter — two handoffs per append, and the re-read, inside the window in which
every other writer of the chain waits. Now each append first takes
`pg_advisory_xact_lock(chain - 2^62)` (held to its commit, like the row lock was; the key never
meets the application's other advisory locks, which are `hashtext` values or pairs of int4):
one queue, one handoff, and the head's UPDATE finds the row free, its statement's snapshot
already showing the previous append. Writers of different chains take different keys.

Everything else is 0007's: the time is read once the head is held, so in each chain time never
goes back as seq goes up (tests/audit/test_chain.py, four processes on one chain).

The owner's prune takes the same lock before it locks the head row: it appends `audit.pruned`
(0011), and an append holding the chain's lock while waiting for the head row the prune held
would otherwise deadlock with it.
"""

from importlib import import_module

from django.db import migrations

_PREVIOUS = import_module("apps.audit.migrations.0007_one_statement_head").SQL
_LOCK = "    PERFORM pg_catalog.pg_advisory_xact_lock(p_tenant - 4611686018427387904);  -- chain - 2^62\n"
SQL = _PREVIOUS.replace("    LOOP\n", _LOCK + "    LOOP\n", 1)
assert SQL != _PREVIOUS

_PRUNE_PREVIOUS = import_module("apps.audit.migrations.0011_prune_recorded").SQL
_HEAD_LOCKED = "    PERFORM 1 FROM public.audit_auditchain WHERE tenant_id = p_tenant FOR UPDATE;\n"
PRUNE_SQL = _PRUNE_PREVIOUS.replace(_HEAD_LOCKED, _LOCK + _HEAD_LOCKED, 1)
assert PRUNE_SQL != _PRUNE_PREVIOUS


class Migration(migrations.Migration):
    dependencies = [("audit", "0011_prune_recorded")]

    operations = [migrations.RunSQL(SQL, _PREVIOUS), migrations.RunSQL(PRUNE_SQL, _PRUNE_PREVIOUS)]
