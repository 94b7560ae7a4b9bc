"""`audit_chain_purge` takes its chain's locks again (found by a review of the migrations).

0015 made the owner's purge lock the chain before deleting anything (its advisory lock, and its
head row FOR UPDATE, as the head's signer holds it FOR KEY SHARE), so a checkpoint signed while
a purge ran could not outlive the chain. 0019 then rebuilt the function from 0009's text, not
0015's, to refuse the platform's chain: every database migrated past it purged without the locks,
and a checkpoint signed meanwhile stayed behind, an append-only row of a workspace that no
longer exists. 0019 now starts from 0015's text; this puts 0019's function, as it should have
been, on the databases that ran the old one. On a database migrated since, it changes nothing.
"""

from importlib import import_module

from django.db import migrations

SQL = import_module("apps.audit.migrations.0019_purge_not_platform").SQL
assert "FOR UPDATE" in SQL and "pg_advisory_xact_lock" in SQL and "never purged" in SQL


class Migration(migrations.Migration):
    dependencies = [("audit", "0021_append_without_statements")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
