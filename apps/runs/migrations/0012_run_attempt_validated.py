"""The check 0008 added NOT VALID, validated in a transaction of its own: under a lock that lets
the serving release read and write runs meanwhile (foundry/db/counters.py)."""

from django.db import migrations

from foundry.db.counters import counter_validated


class Migration(migrations.Migration):
    dependencies = [("runs", "0011_approval_caps")]

    operations = [counter_validated("runs_run", "attempt")]
