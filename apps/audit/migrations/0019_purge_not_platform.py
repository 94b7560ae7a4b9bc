"""`audit_chain_purge` refuses the platform's chain (0), as `audit_chain_prune` does (0014).

Its gate asked for a `tenants_tenant` row of that id in status `deleting` and a scheduling on the
platform chain whose grace is over — a row the app role may insert and an event it may append. So
SQL injected into the application could insert a tenant row with id 0, append a scheduling naming
it, and purge the whole platform chain: the forged scheduling with it, and its head and base, so
the next append started a fresh chain at #1 that verified as intact (found by a review of the app
role's reach). No workspace has an id below 1.
"""

from importlib import import_module

from django.db import migrations

# The purge as 0015 left it (its chain's locks). This migration first took 0009's text, which
# dropped them on every database it ran on: 0022 puts them back there.
_PREVIOUS = import_module("apps.audit.migrations.0015_purge_queue").SQL
_NOT_PLATFORM = """BEGIN
    IF p_tenant < 1 THEN
        RAISE EXCEPTION 'the platform''s audit chain is never purged' USING ERRCODE = 'insufficient_privilege';
    END IF;
"""
SQL = _PREVIOUS.replace("BEGIN\n", _NOT_PLATFORM, 1)
assert SQL != _PREVIOUS


class Migration(migrations.Migration):
    dependencies = [("audit", "0018_chain_base_signed_as")]

    operations = [migrations.RunSQL(SQL, _PREVIOUS)]
